"""The job.yaml reference as Markdown, generated from the spec models (docs/reference.md)."""

from __future__ import annotations

import json
import types
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from launcher.spec.load import section_of, tag_of, variants_of
from launcher.spec.models import JobSpec


def markdown_reference() -> str:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    _rows(JobSpec, "", lines)
    return "\n".join(lines) + "\n"


def _rows(model: type[BaseModel], prefix: str, lines: list[str], skip: str = "") -> None:
    for name, field in model.model_fields.items():
        if name == skip:
            continue
        key = f"{prefix}{name}"
        annotation = field.annotation
        section = section_of(annotation)
        if section is not None:
            kind = "section" if section is annotation else "optional section"
            lines.append(f"| `{key}` | {kind} | | {field.description} |")
            _rows(section, f"{key}.", lines)
            continue
        variants = variants_of(annotation)
        if variants:  # one block of keys per member, each headed by its description
            members = list(dict.fromkeys(variants.values()))
            tag = tag_of(members[0])
            default = getattr(field.get_default(call_default_factory=True), tag)
            lines.append(f"| `{key}` | section | `{tag}: {default}` | {field.description} |")
            for variant in members:
                name = next(n for n, member in variants.items() if member is variant)
                lines.append(f"| `{key}.{tag}: {name}` | | | "
                             f"{variant.__doc__.splitlines()[0]} |")
                _rows(variant, f"{key}.", lines, skip=tag)
            continue
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "**required**"
        else:
            default = f"`{json.dumps(field.get_default(call_default_factory=True))}`"
        kind = _type_name(annotation).replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {default} | {field.description} |")


def _type_name(annotation) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    return "null" if annotation is type(None) else annotation.__name__
