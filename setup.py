"""The compiled part of crawl: crawler/mirror/_skim.c, the HTML link reader the crawl uses.

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and crawl reads HTML with the Python skim (skim.py), two to three times
slower (`crawl --version` says which). scripts/test installs gcc so that the tests check it.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("crawler.mirror._skim", ["crawler/mirror/_skim.c"], optional=True,
                             extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"])])
