"""`crawl config set CONFIG KEY=VALUE ...`: change settings of a config file for good, in place.

Only the text of the value changes: comments, blank lines, key order and the style of the rest
of the file stay as the user wrote them. A key the file does not have yet is added to its
section (a section it lacks, as one line: `health: {min_pages_ratio: 0.4}`). The edit is
checked before the file is replaced: the new text must read as exactly the config the old one
gives with the settings applied (what `--set` gives for one run); a file that cannot be edited
that way is left as it is, with an error that says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from crawler.config import Config
from crawler.config_file import parse_config, read_config_text
from crawler.errors import ConfigError, CrawlError

LABEL = "config set"  # how a problem with a setting is told: "config set snapshots.keep: ..."


def set_in_file(path: Path, settings: dict[str, Any]) -> Config:
    """Write `settings` (dotted key -> value) into the config file at `path`; returns the
    config it holds now."""
    text = read_config_text(path)
    expected = parse_config(text, str(path), settings, overrides_from=LABEL)
    edited = text
    for key, value in settings.items():
        edited = set_in_text(edited, key, value, str(path))
    if parse_config(edited, str(path)) != expected:
        raise ConfigError(f"{path}: cannot change {', '.join(settings)} without rewriting more of the file; "
                          "edit it by hand (or use --set for one run)")
    _replace(path, edited)
    return expected


def set_in_text(text: str, key: str, value: Any, source: str) -> str:
    """The YAML `text` with `value` at the dotted `key`."""
    parts = key.split(".")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:  # an empty file
        return text + ("" if not text or text.endswith("\n") else "\n") + _entry(parts, value) + "\n"
    for depth, part in enumerate(parts):
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{LABEL} {key}: {'.'.join(parts[:depth]) or 'the file'} in {source} "
                              "is not a mapping of keys")
        pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
        if pair is None:
            return _insert(text, node, _entry(parts[depth:], value), top=depth == 0)
        key_node, value_node = pair
        if depth == len(parts) - 1 or _is_empty(value_node):
            return _replace_value(text, key_node, value_node, _nested(parts[depth + 1:], value))
        node = value_node
    raise AssertionError("unreachable: the loop returns at the last part")


def _replace_value(text: str, key_node: yaml.Node, value_node: yaml.Node, value: Any) -> str:
    if _is_block(value_node):  # `key:` and indented lines below: all of it becomes `key: VALUE`
        start, end = key_node.end_mark.index, _content_end(text, value_node)
        return text[:start] + ": " + one_line(value) + text[end:]
    if _is_empty(value_node):  # `key:` with nothing after the colon
        colon = text.index(":", key_node.end_mark.index) + 1
        return text[:colon] + " " + one_line(value) + text[colon:]
    start, end = value_node.start_mark.index, _trimmed(text, value_node.start_mark.index, value_node.end_mark.index)
    return text[:start] + one_line(value) + text[end:]


def _insert(text: str, mapping: yaml.MappingNode, entry: str, top: bool) -> str:
    """`entry` (a `key: value` line) added to `mapping`: at the end of the file for the top
    level, after the section's last line for a block section, before the `}` of a flow one."""
    if mapping.flow_style:
        close = mapping.end_mark.index - 1  # the "}"
        return text[:close] + (", " if mapping.value else "") + entry + text[close:]
    if top:
        return text + ("" if text.endswith("\n") else "\n") + entry + "\n"
    indent = " " * mapping.value[0][0].start_mark.column
    line_end = text.find("\n", _content_end(text, mapping))
    if line_end < 0:
        return text + "\n" + indent + entry + "\n"
    return text[: line_end + 1] + indent + entry + "\n" + text[line_end + 1:]


def _content_end(text: str, node: yaml.Node) -> int:
    """Where the text of a value ends: a block collection's end mark lies past its trailing
    comments and blank lines, so it is its last value's end."""
    if _is_block(node):
        last = node.value[-1]
        return _content_end(text, last[1] if isinstance(node, yaml.MappingNode) else last)
    return _trimmed(text, node.start_mark.index, node.end_mark.index)


def _trimmed(text: str, start: int, end: int) -> int:
    """`end` moved back over the line breaks and spaces a block scalar (`|`) ends with."""
    while end > start and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def _is_block(node: yaml.Node) -> bool:
    return isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and bool(node.value)


def _is_empty(node: yaml.Node) -> bool:
    """`key:` with no value written (null): a section can be filled in there."""
    return isinstance(node, yaml.ScalarNode) and node.start_mark.index == node.end_mark.index


def _nested(parts: list[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


def _entry(parts: list[str], value: Any) -> str:
    return f"{parts[0]}: {one_line(_nested(parts[1:], value))}"


def one_line(value: Any) -> str:
    """A value as YAML on one line: 30, 'a: b', [files, warc], {keep: 3}."""
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31, sort_keys=False)
    return dumped.removesuffix("\n...\n").strip()


def _replace(path: Path, text: str) -> None:
    """Atomically, keeping the file's permissions (and a symlink pointing where it did)."""
    target = path.resolve()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        shutil.copymode(target, temporary)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise CrawlError(f"{path}: cannot write: {exc.strerror or exc}") from None
