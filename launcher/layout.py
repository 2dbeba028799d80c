"""The storage layout of one run: the second half of the contract between launcher and jobs.

    <storage.uri>/<job name>/<run id>/
      spec.json  status.json  metrics.jsonl  summary.json
      logs/driver.log  checkpoints/  model/  plots/

The run's folder is the folder that holds its spec.json, so `python -m jobs.run --spec
<run>/spec.json` tells the job everything: what to run and where its results go.
No heavy imports: both halves use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @classmethod
    def for_run(cls, storage_uri: str, job_name: str, run_id: str) -> RunLayout:
        return cls(Path(storage_uri) / job_name / run_id)

    @classmethod
    def from_spec_path(cls, spec_path: str | Path) -> RunLayout:
        return cls(Path(spec_path).parent)

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def driver_log(self) -> Path:
        return self.root / "logs" / "driver.log"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def write_status(self, state: str, **fields) -> None:
        """Merge `fields` into status.json with the new state; both halves call this."""
        current = json.loads(self.status.read_text()) if self.status.exists() else {}
        current.update(fields, state=state, updated_at=time.time())
        if state != "FAILED":
            current.pop("error", None)  # a resumed run is no longer failed
        self.status.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2))
        tmp.replace(self.status)  # atomic: a reader never sees half a file
