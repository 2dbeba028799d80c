"""Metrics against values worked out by hand, overall and per slice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jobs import metrics
from jobs.tasks import IGNORE_INDEX, task_for


def test_perplexity_is_exp_of_the_mean_token_loss():
    # rows with 2 and 2 labelled tokens and summed losses 2 and 4: mean 1.5 a token
    assert metrics.perplexity([2.0, 4.0], [2, 2]) == {"perplexity": pytest.approx(math.exp(1.5))}


def test_macro_classification_scores():
    # gold 0 0 1 2 / predicted 0 1 1 1. Class 0: P 1, R 1/2, F1 2/3. Class 1: P 1/3, R 1,
    # F1 1/2. Class 2: never predicted, P 0, R 0, F1 0.
    scores = metrics.classification(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 2]), 3)
    assert scores == pytest.approx({"accuracy": 0.5, "precision": (1 + 1 / 3) / 3,
                                    "recall": 0.5, "f1": (2 / 3 + 1 / 2) / 3})


def test_entities_count_whole_spans():
    # gold spans: PKG at 0, PKG at 2-3; predicted: PKG at 0, PKG at 2 (wrong end)
    scores = metrics.entities([["B-PKG", "O", "B-PKG", "O"]], [["B-PKG", "O", "B-PKG", "I-PKG"]])
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                    "accuracy": 0.75})


def test_rouge_and_bleu():
    same = metrics.text_overlap(["a terminal mail client"], ["a terminal mail client"])
    assert same == pytest.approx({"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "bleu": 100.0})
    # unigrams 2 of 3 shared; bigrams 1 of 2; longest common subsequence 2 of 3
    scores = metrics.text_overlap(["the cat sat"], ["the cat ran"])
    assert (scores["rouge1"], scores["rouge2"], scores["rougeL"]) == pytest.approx(
        (2 / 3, 1 / 2, 2 / 3))
    assert 0 <= scores["bleu"] < 100


def test_every_metric_per_slice():
    from transformers import EvalPrediction

    compute = task_for("seq_classification").metrics(None, ["a", "b"])
    sliced = metrics.EvalMetrics(compute, ["short", "long", "short", "long"], "length")
    result = sliced(EvalPrediction(predictions=np.array([0, 1, 1, 1]),
                                   label_ids=np.array([0, 0, 1, 1])))
    assert result["accuracy"] == 0.75
    assert result["accuracy[length=short]"] == 1.0
    assert result["accuracy[length=long]"] == 0.5
    assert set(result) == {f"{name}{where}" for name in ("accuracy", "precision", "recall", "f1")
                           for where in ("", "[length=short]", "[length=long]")}


def test_token_metrics_skip_ignored_positions():
    compute = task_for("token_classification").metrics(None, ["B-PKG", "O"])
    labels = np.array([[IGNORE_INDEX, 0, 1, IGNORE_INDEX, 1, IGNORE_INDEX]])
    predictions = np.array([[1, 0, 1, 0, 0, 0]])  # the ignored positions are not scored
    assert compute(predictions, labels) == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "accuracy": 2 / 3})


def test_causal_perplexity_matches_the_model_loss(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer("vim is a text editor for the terminal", return_tensors="pt")["input_ids"]
    labels = ids.clone()
    labels[0, :3] = IGNORE_INDEX  # a masked prompt
    with torch.no_grad():
        output = model(input_ids=ids, labels=labels)
    reduced = task_for("causal_lm").reduce_logits(output.logits, labels).numpy()
    scores = task_for("causal_lm").metrics(tokenizer, None)(reduced, labels.numpy())
    assert scores["perplexity"] == pytest.approx(math.exp(output.loss.item()), rel=1e-4)
