"""Tiny models for the non-causal tasks, built from a config (no hub here), with tokenizers
trained on the Debian descriptions in a second; and token-classification rows made from them.

Session fixtures: `tiny_bert` (an encoder for the classification tasks, WordPiece) and
`tiny_bart` (an encoder-decoder for seq2seq, byte-level BPE). Both load through the same
`Auto*.from_pretrained(folder)` path as a hub model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DESCRIBE = EXAMPLES / "data" / "debian_describe.jsonl"


def debian_texts() -> list[str]:
    rows = [json.loads(line) for line in DESCRIBE.read_text(encoding="utf-8").splitlines()]
    return [row[key] for row in rows for key in ("prompt", "response")]


def build_tiny_bert(out: Path) -> Path:
    import torch
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(debian_texts(), vocab_size=2000, show_progress=False)
    wordpiece._tokenizer.post_processor = BertProcessing(  # [CLS] text [SEP], as BERT's
        ("[SEP]", wordpiece.token_to_id("[SEP]")), ("[CLS]", wordpiece.token_to_id("[CLS]")))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_bart(out: Path) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(debian_texts(), vocab_size=2000, special_tokens=specials,
                            show_progress=False)
    bos, eos = bpe.token_to_id("<s>"), bpe.token_to_id("</s>")
    bpe._tokenizer.post_processor = TemplateProcessing(  # <s> text </s>, as BART's tokenizer
        single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                        model_max_length=512)
    torch.manual_seed(0)
    config = BartConfig(vocab_size=len(tokenizer), d_model=64, encoder_layers=2,
                        decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=256,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=bos, eos_token_id=eos,
                        decoder_start_token_id=eos, forced_eos_token_id=eos)
    BartForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def package_mentions(out: Path) -> Path:
    """Token-classification rows from real Debian text: the words of each description, tagged
    B-PKG where the word names the package itself (its name, or its name without a `lib`,
    `python3-`… prefix or a `-dev`, `-doc`… suffix) and O elsewhere. Only descriptions that
    name their package are kept."""
    rows = []
    for line in DESCRIBE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        package = row["package"].lower()
        base = re.sub(r"^(python3?-|lib|golang-|node-|ruby-|r-cran-|perl-)", "", package)
        base = re.sub(r"(-dev|-doc|-data|-common|-utils|-tools|-bin|\d+)$", "", base)
        words = row["response"].split()
        tags = ["B-PKG" if re.sub(r"[^\w.+-]", "", word).lower().strip(".") in (package, base)
                else "O" for word in words]
        if "B-PKG" in tags:
            rows.append({"tokens": words, "tags": tags, "package": row["package"]})
    out.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory) -> Path:
    return build_tiny_bart(tmp_path_factory.mktemp("models") / "tiny-bart")


@pytest.fixture(scope="session")
def package_tags(tmp_path_factory) -> Path:
    return package_mentions(tmp_path_factory.mktemp("data") / "package_tags.jsonl")
