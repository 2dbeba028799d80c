"""Build a tiny GPT-2 and a BPE tokenizer trained on the example data, into a local folder.

No model hub is needed: the tokenizer is trained on the data in about a second, and the model
is a small GPT-2 given a short language-model pretraining on the same text (a few seconds on a
CPU), so that fine-tuning starts from a model that knows some English. The result loads with
`AutoModelForCausalLM.from_pretrained(DIR)` exactly like a hub model, so the quickstart runs
the same loading code a real model would.

    python examples/build_tiny_model.py --out examples/models/tiny-gpt2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).parent
EOS = "<|endoftext|>"


def build(out: Path, data: Path, vocab_size: int, layers: int, width: int, seed: int,
          pretrain_steps: int) -> None:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    texts = [value for row in rows for value in row.values() if isinstance(value, str)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=[EOS], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS,
                                        eos_token=EOS, pad_token=EOS, model_max_length=512)

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=width, n_layer=layers,
                        n_head=4, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    pretrain(model, tokenizer, texts, steps=pretrain_steps)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"tiny GPT-2 ({model.num_parameters() / 1e6:.1f}M parameters, vocab {len(tokenizer)}) "
          f"saved to {out}")


def pretrain(model, tokenizer, texts: list[str], steps: int, batch: int = 16,
             length: int = 128) -> None:
    """Plain next-token training on the concatenated texts: a base model, not a fine-tune."""
    import torch

    ids = tokenizer(f" {EOS} ".join(texts))["input_ids"]
    blocks = torch.tensor(ids[: len(ids) // length * length]).view(-1, length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch_ids = blocks[torch.randint(len(blocks), (batch,))]
        loss = model(input_ids=batch_ids, labels=batch_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == steps - 1:
            print(f"pretrain step {step + 1}/{steps}: loss {loss.item():.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "models" / "tiny-gpt2")
    parser.add_argument("--data", type=Path, default=HERE / "data" / "debian_describe.jsonl")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, default=200)
    args = parser.parse_args()
    build(args.out, args.data, args.vocab_size, args.layers, args.width, args.seed,
          args.pretrain_steps)


if __name__ == "__main__":
    main()
