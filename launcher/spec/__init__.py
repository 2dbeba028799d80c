"""The job spec shared by both halves: models (no heavy imports) and the YAML loader."""

from launcher.spec.models import JobSpec

__all__ = ["JobSpec"]
