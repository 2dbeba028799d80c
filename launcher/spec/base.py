"""What every spec section shares: unknown keys are errors, and errors can name where they
belong in the job file. Pydantic only (both halves import the spec)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def located(loc: str, message: str) -> PydanticCustomError:
    """An error that `launch validate` places at `loc`, a dotted path from the job's top."""
    return PydanticCustomError("located", message, {"loc": loc})
