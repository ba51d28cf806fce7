"""What every config section is: an immutable pydantic model, strict about unknown keys, whose
field docstrings say what each key means (`crawl init` writes them into the configs it makes)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def compile_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regex {pattern!r}: {exc}") from None
    return pattern


Regex = Annotated[str, AfterValidator(compile_regex)]


class Section(BaseModel):
    """Every config section: immutable, strict about unknown keys. The docstring under each
    field is what it means: `crawl init` reads it from the source and writes it into the
    configs it makes (not pydantic at every start: `use_attribute_docstrings` costs 20 ms)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)
