"""Reading a config: YAML text -> one frozen, validated `Config` (config.py), with settings
given on the command line (`--set KEY=VALUE`) applied on top.

Every problem is one `ConfigError` line naming the file, the line, the key and what is
wrong, with a suggestion where a key is misspelt or in the wrong section.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from crawler.config import Config
from crawler.errors import ConfigError


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config file, with `overrides` (see parse_config); every problem
    is one ConfigError line."""
    return parse_config(read_config_text(path), source=str(path), overrides=overrides)


def read_config_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None


def parse_config(text: str, source: str = "<config>", overrides: dict[str, Any] | None = None,
                 overrides_from: str = "--set") -> Config:
    """Validate YAML text. `overrides` map dotted keys ("snapshots.keep") to the values that
    replace what the text says there (`--set`, the demo's start URL); they are validated
    like the text, and a problem with one is told as `{overrides_from} KEY: ...`."""
    root, data = _read_yaml(text, source)
    for key, value in (overrides or {}).items():
        _apply(data, key, value, f"{overrides_from} {key}", source)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, root, source, overrides or {}, overrides_from)) from None


def parse_setting(text: str, label: str = "--set") -> tuple[str, Any]:
    """`KEY=VALUE` of --set and `crawl config set`: a dotted key, and a value read as YAML
    (30, true, null, [a, b], {keep: 3}: what the same text would mean in the file)."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"{label} {text}: give KEY=VALUE, e.g. snapshots.keep=30")
    try:
        return key, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label} {key}: cannot read {value!r} as a YAML value: "
                          f"{getattr(exc, 'problem', None) or exc}") from None


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The document's node tree (for line numbers) and its data, which must be a mapping."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys (start_urls: ...)")
    return root, data


def _apply(data: dict[str, Any], key: str, value: Any, label: str, source: str) -> None:
    """Put `value` at the dotted `key` of `data`, creating the sections on the way."""
    *sections, last = key.split(".")
    for depth, name in enumerate(sections):
        section = data.get(name)
        if section is None:
            section = data[name] = {}
        elif not isinstance(section, dict):
            where = ".".join(sections[: depth + 1])
            raise ConfigError(f"{label}: {where} in {source} is not a mapping of keys")
        data = section
    data[last] = value


def _describe(exc: ValidationError, root: yaml.Node | None, source: str, overrides: dict[str, Any],
              overrides_from: str) -> str:
    """The first validation problem, as `file:line: key: what is wrong` -- or `--set KEY: what
    is wrong` when the value came from an override."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    overridden = [name for name in overrides if key == name or key.startswith(name + ".")]
    if overridden:
        where = f"{overrides_from} {overridden[0]}"
        key = key if key != overridden[0] else ""
    else:
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key{_suggestion(loc)}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "too_short":
        message = f"needs at least {error['ctx']['min_length']} item(s)"
    elif kind == "value_error":
        message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    else:
        message = f"{error['msg'][0].lower()}{error['msg'][1:]} (got {error.get('input')!r})"
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


def _suggestion(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        section = section_of(field) if field else None
        if section is None:
            return ""
        model = section
    name = str(loc[-1])
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    # A key of another section, written where it does not belong (`timeout:` for http.timeout).
    elsewhere = [key for key in dotted_keys(Config) if key.rpartition(".")[2] == name] or \
        difflib.get_close_matches(name, dotted_keys(Config), n=1, cutoff=0.8)
    if elsewhere:
        return f" (did you mean {elsewhere[0]!r}?)"
    return f" (known keys: {', '.join(model.model_fields)})"


def dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the config tree below `model`, sections and their keys, as section.key."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        section = section_of(field)
        if section is not None:
            keys += dotted_keys(section, f"{prefix}{name}.")
    return keys


def section_of(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a field that is a section of keys (scope, http...), else None."""
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest ancestor."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            node = match[0][1] if match else None
            if match:
                line = match[0][0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            node = None
    return line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
