"""The DeepSpeed op this suite's CPU runs compile on first use, built ahead into torch's
extension cache: CPUAdam, for optimizer offload. (The shared-memory collectives DeepSpeed would
build too are skipped: jobs.deepspeed_config.skip_inference_collectives.)

On a fresh machine it takes about a minute of one core. conftest starts this module in the
background when a session has integration tests and runs the unit tests first, which leave a
core mostly idle; a run that needs an op before it is done waits on torch's build lock, then
loads the finished op. It keeps normal priority: unit tests wait on it too, and the image build
beside it yields (tests/support/image_fixtures.py). Run as `python -m tests.support.deepspeed_ops`
from the project's root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What jobs load: deepspeed.ops.adam.DeepSpeedCPUAdam.
BUILDERS = ("CPUAdamBuilder",)


def start_building(log: Path) -> subprocess.Popen:
    """Build the ops in a background process that writes its output to `log`."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.support.deepspeed_ops"],
                                cwd=Path(__file__).parents[2], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def main() -> None:
    from deepspeed.accelerator import get_accelerator

    for name in BUILDERS:
        builder = get_accelerator().create_op_builder(name)
        builder.load()
        print(f"{builder.absolute_name()} ready", flush=True)


if __name__ == "__main__":
    main()
