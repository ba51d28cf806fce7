"""The compiled part of crawl: crawler/mirror/_skim.c, the HTML link reader the crawl uses.

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and crawl reads HTML with the Python skim (skim.py), three to seven
times slower (`crawl --version` says which). scripts/test installs gcc so that the tests check it.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "crawler/mirror/_skim.c"
# The source's digest goes into the module: a test compares it with the file, so that an old
# build left in place (an optional extension that failed to build is no error) cannot pass.
DIGEST = hashlib.sha256(Path(__file__).parent.joinpath(SOURCE).read_bytes()).hexdigest()

setup(ext_modules=[Extension("crawler.mirror._skim", [SOURCE], optional=True,
                             define_macros=[("SOURCE_SHA256", f'"{DIGEST}"')],
                             extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"])])
