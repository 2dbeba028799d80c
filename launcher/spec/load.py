"""job.yaml → resolved JobSpec, with every problem reported as FILE:LINE:COL: path: message."""

from __future__ import annotations

import difflib
import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from launcher.errors import SpecError
from launcher.spec.models import JobSpec
from launcher.spec.resolve import resolve

Loc = tuple[str, ...]
# A job file holds settings: a few hundred values in a few kB. These bounds answer any file,
# a hostile one too (a 'billion laughs' of nested aliases), in well under 2 s.
MAX_BYTES = 64 * 1024
MAX_VALUES = 10_000
MAX_DEPTH = 32


def load_spec(path: str | Path, overrides: dict | None = None) -> JobSpec:
    """Read, parse, validate and resolve a job file; raise SpecError listing every problem.

    `overrides` (nested like the file, e.g. from command-line flags) replace the file's values
    before validation, so they are checked exactly like the file.
    """
    path = Path(path)
    text = _read_text(path)
    data, positions = _parse_yaml(text, path)
    merge_overrides(data, overrides or {})
    for loc in _leaves(overrides or {}):  # the file's line would show another value
        positions = {known: at for known, at in positions.items() if known[:len(loc)] != loc}
        positions[loc] = None
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_validation(err, path, positions)) from None
    resolved, problems = resolve(spec, path.resolve().parent)
    if problems:
        raise SpecError([_line(path, positions, loc, msg) for loc, msg in problems])
    return resolved


def merge_overrides(into: dict, update: dict) -> None:
    """Merge `update` into the parsed job in place: nested mappings merge, the rest replace."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge_overrides(into[key], value)
        else:
            into[key] = value


def overrides_from_sets(assignments: list[str]) -> dict:
    """`--set KEY.PATH=VALUE` flags as overrides for load_spec; each VALUE is read as YAML
    (`1e-4`, `true`, `[c_attn]`), and a later flag for the same key wins."""
    overrides: dict = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        path = key.strip().split(".")
        if not equals or not all(part.isidentifier() for part in path):
            raise SpecError([f"--set {assignment}: write KEY.PATH=VALUE, e.g. "
                             "--set training.learning_rate=1e-4"])
        if len(text) > 1000:  # a setting, not a document: the file's own bounds in spirit
            raise SpecError([f"--set {key}: the value is over 1000 characters; put it in the "
                             "job file"])
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError([f"--set {assignment}: the value is not YAML "
                             f"({str(err).splitlines()[0]})"]) from None
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        merge_overrides(overrides, nested)
    return overrides


def _leaves(overrides: dict, loc: Loc = ()) -> list[Loc]:
    return [leaf for key, value in overrides.items()
            for leaf in (_leaves(value, (*loc, key)) if isinstance(value, dict) and value
                         else [(*loc, key)])]


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory; pass the job's YAML file"]) from None
    except PermissionError:
        raise SpecError([f"{path}: cannot read the file: permission denied"]) from None
    except OSError as err:
        raise SpecError([f"{path}: cannot read the file: {err.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            [f"{path}: not a text file (byte {err.start} is not UTF-8); pass the job's YAML file"]
        ) from None
    if "\x00" in text:
        raise SpecError([f"{path}: not a text file (it contains NUL bytes)"])
    if len(raw) > MAX_BYTES:
        raise SpecError([f"{path}: more than {MAX_BYTES // 1024} KiB; a job file holds settings "
                         "(data goes in data.path)"])
    return text


def _parse_yaml(text: str, path: Path) -> tuple[dict[str, Any], dict[Loc, tuple[int, int]]]:
    """Parse YAML, and map every key path to the 1-based line and column where it is written."""
    try:
        root = yaml.compose(text, Loader=_ShallowLoader)
        if root is None:
            raise SpecError([f"{path}:1:1: the file is empty; a job needs at least name, model "
                             "and data (see `launch schema` or examples/quickstart.yaml)"])
        positions: dict[Loc, tuple[int, int]] = {(): _mark(root)}
        _collect_positions(root, (), positions, path)
        if len(positions) > MAX_VALUES:
            raise SpecError([f"{path}:1:1: more than {MAX_VALUES} values (aliases expanded); a "
                             "job file holds a few hundred settings"])
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        # The context (e.g. where an unclosed bracket opened) is where the fix goes.
        mark = err.context_mark or err.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise SpecError([f"{path}:{where}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as err:
        raise SpecError([f"{path}:1:1: invalid YAML: {err}"]) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError([f"{path}:1:1: expected a mapping of sections (name, model, data, ...), "
                         f"got a {kind}"])
    return data, positions


class _ShallowLoader(yaml.SafeLoader):
    """SafeLoader that stops at MAX_DEPTH levels of nesting, before Python's recursion limit
    (and the scanner's look-ahead over thousands of brackets) would."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:  # reported like any other YAML error, at its place
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep; a job file is a few "
                    "levels of sections", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _collect_positions(node: yaml.Node, loc: Loc, out: dict, path: Path) -> None:
    if len(out) > MAX_VALUES:  # aliases can make a small file a huge tree: stop walking it
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if loc + (key,) in out:
                line, col = _mark(key_node)
                raise SpecError([f"{path}:{line}:{col}: {'.'.join(loc + (key,))}: duplicate key; "
                                 "keep only one"])
            out[loc + (key,)] = _mark(key_node)
            _collect_positions(value_node, loc + (key,), out, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[loc + (str(index),)] = _mark(item)
            _collect_positions(item, loc + (str(index),), out, path)


def _line(path: Path, positions: dict, loc: Loc, message: str) -> str:
    """Point at the deepest part of `loc` that is written in the file."""
    known = loc
    while known not in positions:
        known = known[:-1]
    where = ".".join(loc) or "(top level)"
    if positions[known] is None:
        return f"{path}: {where} (from the command line): {message}"
    line, col = positions[known]
    return f"{path}:{line}:{col}: {where}: {message}"


def _format_validation(err: ValidationError, path: Path, positions: dict) -> list[str]:
    # Union fields give one error per alternative; merge them into one line per location.
    merged: dict[Loc, list[str]] = {}
    for item in err.errors(include_url=False):
        # A check across sections names the key to fix in its context (models.JobSpec).
        where = item.get("ctx", {}).get("loc")
        loc = tuple(where.split(".")) if where else tuple(str(part) for part in item["loc"])
        if item["type"] == "union_tag_invalid":  # point at the tag itself (`kind:`, `type:`)
            loc = (*loc, item["ctx"]["discriminator"].strip("'"))
        field_loc, parent = _field_loc(loc)
        message = _message(item, field_loc, parent)
        if message not in merged.setdefault(field_loc, []):
            merged[field_loc].append(message)
    return [_line(path, positions, loc, " or ".join(msgs)) for loc, msgs in merged.items()]


def _field_loc(loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """Drop the union-branch labels pydantic appends (e.g. `list[str]`) from a location; also
    return the section holding its last key."""
    model: type[BaseModel] | None = JobSpec
    parent = model
    variants: dict[str, type[BaseModel]] = {}
    keyed = None  # inside a dict field: the type of its values
    kept: list[str] = []
    for part in loc:
        if keyed is not None:  # a key of a dict field (tune.space), as the user wrote it
            if part == "[key]":  # pydantic's label for the key itself, which is the problem
                break
            kept.append(part)
            model, keyed = section_of(keyed), _dict_values(keyed)
            parent = model or parent
            continue
        if variants:  # pydantic names the member of a `type` union it validated against
            if part not in variants:
                kept.append(part)  # a located error's path, already as the user wrote it
                break
            model, variants = variants[part], {}
            continue
        if model is None:  # inside a plain field: keep list indexes, drop branch labels
            if part.isdigit():
                kept.append(part)
            continue
        kept.append(part)
        parent = model
        if part not in model.model_fields:
            break  # an unknown key, kept as the user wrote it
        variants = variants_of(model.model_fields[part].annotation)
        keyed = _dict_values(model.model_fields[part].annotation)
        model = _submodel(model, part)
    return tuple(kept), parent


def _dict_values(annotation) -> Any:
    """V of a `dict[K, V]` field (or `dict[K, V] | None`); else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next((arg for arg in get_args(annotation) if arg is not type(None)), None)
    return get_args(annotation)[1] if get_origin(annotation) is dict else None


def _submodel(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    info = model.model_fields.get(field)
    return section_of(info.annotation if info else None)


def section_of(annotation) -> type[BaseModel] | None:
    """The section model of `Section` or `Section | None`, else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        sections = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = sections[0] if len(sections) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


# The field that tells the members of a section union apart: `method.type`, `target.kind`.
TAGS = ("type", "kind")


def tag_of(section: type[BaseModel]) -> str:
    return next(tag for tag in TAGS if tag in section.model_fields)


def variants_of(annotation) -> dict[str, type[BaseModel]]:
    """The sections of a union told apart by their tag (TAGS), by each name they answer to
    (an alias such as target kind `local` too); else {}."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return {}
    variants = {}
    for arg in get_args(annotation):
        fields = getattr(arg, "model_fields", {})
        tag = next((fields[name] for name in TAGS if name in fields), None)
        if tag is None or get_origin(tag.annotation) is not Literal:
            return {}
        variants.update(dict.fromkeys(get_args(tag.annotation), arg))
    return variants


def _message(item: dict, loc: Loc, parent: type[BaseModel] | None) -> str:
    kind = item["type"]
    if kind == "extra_forbidden" and parent is not None:
        allowed = list(parent.model_fields)
        owners = _variants_owning(parent, loc[-1])
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        guess = (f"`{loc[-1]}` belongs to {owners}; " if owners
                 else f"did you mean `{hint[0]}`? " if hint else "")
        return f"unknown key; {guess}allowed keys: {', '.join(allowed)}"
    field = parent.model_fields.get(loc[-1]) if parent is not None and loc else None
    description = (field.description or "") if field is not None else ""
    if kind == "missing" and field is not None:
        return f"required key is missing: {description}".rstrip(": ")
    if kind in ("dict_type", "model_type") and isinstance(item.get("input"), list):
        return f"expected `key: value` entries, not a list. {description}".rstrip(". ")
    if kind == "union_tag_invalid":
        return (f"unknown {loc[-1]} `{item['ctx']['tag']}`; one of: "
                f"{item['ctx']['expected_tags'].replace(chr(39), '')}")
    message = item["msg"].removeprefix("Value error, ")
    value = item.get("input")
    if kind != "missing" and (value is None or isinstance(value, (str, int, float, bool))):
        message += f" (got {json.dumps(value)})"
    return message


def _variants_owning(section: type[BaseModel], key: str) -> str | None:
    """`kind kubernetes` when `section` is a member of a union (target, method) and `key`
    belongs to other members, whose tag the user then has to set."""
    for field in JobSpec.model_fields.values():
        variants = variants_of(field.annotation)
        if section in variants.values():
            owners = [name for name, model in variants.items()
                      if model is not section and key in model.model_fields]
            return f"{tag_of(section)} {' or '.join(owners)}" if owners else None
    return None
