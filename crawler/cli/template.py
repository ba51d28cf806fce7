"""`crawl init URL`: a config file for a site, with every key, its default and what it means.

The text is made from the config models themselves -- each key's docstring becomes its
comment, each default its value -- so a new key, or a new default, is in the next config
`crawl init` writes without anyone editing a template.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from crawler import __version__
from crawler.cli.config_edit import one_line
from crawler.config import Config
from crawler.config_file import parse_config, section_of
from crawler.errors import UsageError
from crawler.urls import host_of

WIDTH = 96
# Keys written as a comment, with a value to copy: no default worth writing down (user_agent
# names this version of crawl; auth needs a password variable; schedule runs with run-scheduled).
COMMENTED = {"http.user_agent": None, "http.auth": "{username: reader, password_env: SITE_PASSWORD}",
             "schedule": '"0 2 * * *"'}
EXAMPLES = {"scope.exclude": ["- /private/", r"- \.zip$"],
            "snapshots.ignore": ['- css: ".updated-at"', "- regex: 'name=\"csrf\" value=\"[^\"]*\"'"],
            "http.headers": ["Accept-Language: en"]}


def default_path(url: str) -> Path:
    return Path(host_of(url).replace(":", "_") + ".yaml")


def config_text(url: str, output: str | None = None, name: str | None = None) -> str:
    """A config that mirrors `url` into `output` (default: output/<host>) with the defaults,
    to be saved as `name` (default: <host>.yaml)."""
    config = parse_config("", "crawl init", {"start_urls": [url]}, overrides_from="crawl init")
    start = config.start_urls[0]
    values = config.model_dump(mode="json")
    # As given, or the default as the user would write it: relative to where crawl runs.
    values["output"] = output or f"output/{host_of(start).replace(':', '_')}"
    name = name or str(default_path(start))
    head = [f"# crawl config for {config.start_urls[0]}, written by `crawl init` (crawl {__version__}).",
            f"# Run it with:     crawl {name}",
            f"# Change a key:    crawl config set {name} snapshots.keep=30   (or edit this file)",
            "# Every key but start_urls is optional; the values below are the defaults.", ""]
    return "\n".join(head + _section(Config, values, "", 0)).rstrip("\n") + "\n"


def write_config(url: str, path: Path | None = None, output: str | None = None) -> Path:
    """Write the config for `url` at `path` (default: <host>.yaml); returns where."""
    text = config_text(url, output, str(path) if path else None)
    path = path or default_path(parse_config("", "crawl init", {"start_urls": [url]}, overrides_from="crawl init")
                                .start_urls[0])
    if path.exists():
        raise UsageError(f"{path} exists already: give another name with -o, or change it with crawl config set")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _section(model: type[BaseModel], values: dict[str, Any], prefix: str, indent: int) -> list[str]:
    lines = []
    pad = " " * indent
    docs = field_docs(model)
    for name, field in model.model_fields.items():
        key = prefix + name
        sub = section_of(field)
        about = docs.get(name) or (sub.__doc__ if sub is not None else None) or ""
        lines += [pad + "# " + text for text in textwrap.wrap(" ".join(about.split()), WIDTH - indent - 2)]
        if sub is not None:
            lines += [f"{pad}{name}:", *_section(sub, values[name], key + ".", indent + 2)]
        elif key in COMMENTED:
            example = COMMENTED[key]
            lines.append(f"{pad}# {name}: {example if example is not None else one_line(values[name])}")
        elif key == "start_urls":
            lines += [f"{pad}{name}:", *(f"{pad}  - {url}" for url in values[name])]
        else:
            lines.append(f"{pad}{name}: {one_line(values[name])}")
        lines += [f"{pad}#   {example}" for example in EXAMPLES.get(key, [])]
        if indent == 0:
            lines.append("")
    return lines


@cache
def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstring under each field of `model` (and of the models it extends) in their
    source: what the key means."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not issubclass(cls, BaseModel) or cls is BaseModel:
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        assert isinstance(body, ast.ClassDef)
        for field, after in itertools.pairwise(body.body):
            if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) \
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) \
                    and isinstance(after.value.value, str):
                docs[field.target.id] = inspect.cleandoc(after.value.value)
    return docs
