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

from iotruntime.i18n import N_, _
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
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    _("duplicate key {key} (line {line})").format(
                        key=repr(key), line=mark.line + 1
                    ),
                    mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping from `path`, turning every failure into a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [("", _("file not found"))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("", _("cannot read file: {why}").format(why=exc))]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        invalid = (
            _("invalid YAML at line {line}, column {column}: {problem}").format(
                line=mark.line + 1, column=mark.column + 1, problem=problem
            )
            if mark
            else _("invalid YAML: {problem}").format(problem=problem)
        )
        raise ConfigError(path, [("", invalid)]) from None
    if not isinstance(data, dict):
        found = (
            _("an empty file") if data is None else _("a {kind}").format(kind=type(data).__name__)
        )
        problem = _("expected a mapping of keys at the top, found {found}").format(found=found)
        raise ConfigError(path, [("", problem)])
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


# Pydantic's own messages, by error type, in the words of the technician's language. Its
# English stays as pydantic writes it (plurals and all); a type not listed here stays
# English in every language. The context values (`ctx`) fill the placeholders.
_PYDANTIC_MESSAGES = {
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} character(s)"),
    "string_too_long": N_("String should have at most {max_length} character(s)"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "url_parsing": N_("Input should be a valid URL, {error}"),
    "url_scheme": N_("URL scheme should be {expected_schemes}"),
    "value_error": N_("Value error, {error}"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "list_type": N_("Input should be a valid list"),
    "tuple_type": N_("Input should be a valid tuple"),
    "too_short": N_("should have at least {min_length} item(s), not {actual_length}"),
    "too_long": N_("should have at most {max_length} item(s), not {actual_length}"),
    "union_tag_invalid": N_("{discriminator} '{tag}' is none of the expected: {expected_tags}"),
    "union_tag_not_found": N_("{discriminator} is missing: it says which kind this is"),
}
# The choices in pydantic's `expected` ('N', 'E' or 'O') are joined by an English "or".
_CHOICES = {"literal_error", "enum"}


def _pydantic_message(error: ErrorDetails) -> str:
    """Pydantic's message in the process's language (its English when no translation)."""
    template = _PYDANTIC_MESSAGES.get(error["type"])
    translated = _(template) if template is not None else None
    if translated is None or translated == template:
        return error["msg"]
    # A bound written 0 in the model is 0.0 in the context; pydantic shows it as 0.
    context = {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in error.get("ctx", {}).items()
    }
    if error["type"] in _CHOICES:
        head, joined, last = str(context.get("expected", "")).rpartition(" or ")
        if joined:
            context["expected"] = _("{choices} or {last}").format(choices=head, last=last)
    return translated.format(**context)


def _describe(data: object, error: ErrorDetails) -> tuple[str, str]:
    loc = _document_loc(data, error["loc"], missing=error["type"] == "missing")
    msg = _pydantic_message(error)
    if error["type"] == "extra_forbidden":
        msg = _("unknown key (check its spelling and indentation)")
    elif error["type"] == "missing":
        msg = _("required key is missing")
    elif "input" in error and not isinstance(error["input"], dict | list):
        msg = _("{problem} (got {value})").format(problem=msg, value=repr(error["input"]))
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
