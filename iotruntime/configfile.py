"""Loading YAML files into validated models, with errors a technician can act on.

Configs and firmware profiles are edited by hand in the field. A mistake must come back as
one paragraph naming the file, the key path and what is wrong, never as a traceback, so
both the agent and the collector load their files through here.
"""

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails

from iotwire.codec import field_path

T = TypeVar("T", bound=BaseModel)


class ConfigError(Exception):
    """A file that cannot be used, with where and why."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{key}: {what}" if key else what for key, what in problems]
        super().__init__(f"{path}: " + "; ".join(lines))


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML silently keeps the last one otherwise."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping from `path`, turning every failure into a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("", f"cannot read file: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [("", f"invalid YAML at {where}{problem}")]) from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(path, [("", f"expected a mapping of keys at the top, found {found}")])
    return data


def _document_loc(data: object, loc: tuple[int | str, ...], missing: bool) -> tuple[int | str, ...]:
    """The part of pydantic's location that names keys in the file.

    Tagged unions (sources by `type`) insert the tag into the location; walking the
    document tells a tag (not a key here, with more to follow) from a real or missing key.
    """
    kept: list[int | str] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]  # type: ignore[index]
        elif not (last and missing):
            continue
        kept.append(part)
    return tuple(kept)


def _describe(data: object, error: ErrorDetails) -> tuple[str, str]:
    loc = _document_loc(data, error["loc"], missing=error["type"] == "missing")
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling and indentation)"
    elif error["type"] == "missing":
        msg = "required key is missing"
    elif "input" in error and not isinstance(error["input"], dict | list):
        msg = f"{msg} (got {error['input']!r})"
    return field_path(loc), msg


def load_model(path: Path, model: type[T]) -> T:
    """Load `path` into `model`; relative paths inside resolve against the file's folder."""
    data = read_yaml(path)
    try:
        return model.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # A failed item also fails its container's checks; report only the specific cause.
        locs = [e["loc"] for e in errors]
        specific = [
            e
            for e in errors
            if not any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == e["loc"] for o in locs)
        ]
        problems = [_describe(data, e) for e in specific]
        raise ConfigError(path, problems) from None


def _resolve_against_file(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return value if value.is_absolute() or base is None else (base / value)


RelativePath = Annotated[Path, AfterValidator(_resolve_against_file)]
"""A path in a config file, taken relative to that file's folder, so configs travel whole."""


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are typos, and typos are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
