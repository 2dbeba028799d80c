"""Evaluation metrics from the predictions the Trainer gathered, overall and per slice.

Every function takes per-row values (first axis = row) so the same function scores any subset
of the rows; `EvalMetrics` is the Trainer's `compute_metrics`, and adds each metric per value
of the spec's data.slice_field (e.g. `accuracy[length=short]`).
"""

from __future__ import annotations

import math


def perplexity(nll_sums, token_counts) -> dict[str, float]:
    """exp of the mean negative log-likelihood per labelled token."""
    tokens = float(sum(token_counts))
    mean = float(sum(nll_sums)) / tokens if tokens else float("nan")
    return {"perplexity": math.exp(mean) if mean < 700 else float("inf")}


def classification(predicted, gold, num_labels: int) -> dict[str, float]:
    """Accuracy, and precision / recall / F1 averaged over all classes (macro: each class counts
    the same, however rare)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=list(range(num_labels)), average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(gold, predicted)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}


def entities(predicted: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """Entity-level precision / recall / F1 over BIO spans (seqeval: a span counts only when
    its type and both ends match), and the share of words tagged right."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    words = sum(len(row) for row in gold)
    right = sum(p == g for prow, grow in zip(predicted, gold) for p, g in zip(prow, grow))
    return {"precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0)),
            "f1": float(f1_score(gold, predicted, zero_division=0)),
            "accuracy": right / words if words else float("nan")}


def text_overlap(predictions: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measure (0-1, mean over rows; rouge-score with stemming) and corpus BLEU
    (0-100, sacrebleu)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)
        for kind in kinds:
            totals[kind] += scores[kind].fmeasure
    rows = max(len(predictions), 1)
    result = {kind: total / rows for kind, total in totals.items()}
    result["bleu"] = float(sacrebleu.corpus_bleu(predictions, [references]).score)
    return result


class EvalMetrics:
    """The Trainer's compute_metrics: the task's metrics over all rows, then per slice.

    `slices` holds each evaluated row's slice value in dataset order (the order the Trainer
    gathers predictions in across workers).
    """

    def __init__(self, compute, slices: list[str] | None = None, slice_field: str | None = None):
        self.compute = compute
        self.slices = slices
        self.slice_field = slice_field

    def __call__(self, prediction) -> dict[str, float]:
        predictions, label_ids = prediction.predictions, prediction.label_ids
        result = self.compute(predictions, label_ids)
        if self.slices is None:
            return result
        if len(self.slices) != len(predictions):
            raise ValueError(f"{len(predictions)} predictions for {len(self.slices)} rows")
        for value in sorted(set(self.slices)):
            rows = [i for i, s in enumerate(self.slices) if s == value]
            for name, number in self.compute(predictions[rows], label_ids[rows]).items():
                result[f"{name}[{self.slice_field}={value}]"] = number
        return result
