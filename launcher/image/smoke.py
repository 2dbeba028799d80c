"""`launch run-image`: run the built job image here, on tiny settings, before any cluster does.

The image's own spec is shrunk (one worker, a couple of steps) and pointed at a local results
folder mounted into the container; the container then runs the same entrypoint a cluster runs,
`python -m jobs.run`, on a Ray instance of its own. A missing dependency or a file left out of
the image fails here in a minute instead of on the cluster.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from launcher import runs
from launcher.contract import SPEC, RunLayout
from launcher.errors import LaunchError
from launcher.image.streaming import run_streaming
from launcher.spec.models import JobSpec

SMOKE_STEPS = 2
RUNS_IN_CONTAINER = "/runs"


def container_engine() -> str:
    for tool in ("podman", "docker"):
        if shutil.which(tool):
            return tool
    raise LaunchError("run-image needs podman or docker (apt-get install podman)")


def smoke_spec(image_spec: JobSpec) -> JobSpec:
    """The image's spec on tiny settings, writing its results under RUNS_IN_CONTAINER."""
    training = image_spec.training.model_copy(update={
        "max_steps": SMOKE_STEPS, "logging_steps": 1, "save_steps": SMOKE_STEPS,
        "eval_steps": None})
    scale = image_spec.scale.model_copy(update={"num_workers": 1})
    storage = image_spec.storage.model_copy(update={
        "uri": RUNS_IN_CONTAINER, "endpoint_url": None, "profile": None})
    return image_spec.model_copy(update={"training": training, "scale": scale,
                                         "storage": storage})


def run_image(reference: str, image_spec: JobSpec, results: Path, insecure: bool,
              log: Callable[[str], None]) -> RunLayout:
    """Run the smoke job in a container; return where its results are on this machine."""
    spec = smoke_spec(image_spec)
    run_id = runs.new_run_id(spec.name)
    inside = RunLayout.for_run(RUNS_IN_CONTAINER, spec.name, run_id)
    outside = RunLayout.for_run(str(results.resolve()), spec.name, run_id)
    Path(outside.root).mkdir(parents=True, exist_ok=True)
    Path(outside.uri(SPEC)).write_text(spec.model_dump_json(indent=2))
    engine = container_engine()
    command = [engine, "run", "--rm", "--shm-size=1g", f"--volume={results.resolve()}:"
               f"{RUNS_IN_CONTAINER}"]
    if engine == "podman":
        command += ["--pull=missing", f"--tls-verify={'false' if insecure else 'true'}"]
    command += [reference, "python", "-m", "jobs.run", "--spec", inside.uri(SPEC)]
    code, _ = run_streaming(command, log)
    if code != 0:
        raise LaunchError(f"the image failed its smoke run (exit {code}); its log and status "
                          f"are in {outside.root}")
    return outside
