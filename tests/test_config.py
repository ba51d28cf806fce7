from __future__ import annotations

import os
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.config import DEFAULT_USER_AGENT, load_config, parse_config
from crawler.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_minimal_config_gets_documented_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config("start_urls: [https://Books.toscrape.com]\n")
    assert config.start_urls == ("https://books.toscrape.com/",)
    assert config.output_dir == tmp_path / "output" / "books.toscrape.com"
    assert config.scope.domains == ("books.toscrape.com",)
    assert (config.scope.include, config.scope.exclude) == ((), ())
    assert (config.scope.max_depth, config.scope.max_pages) == (20, 100_000)
    assert (config.threads.fetchers, config.threads.parsers, config.threads.writers) == (8, 2, 2)
    assert config.queue_size == 100
    assert (config.http.timeout, config.http.retries, config.http.max_bytes) == (30, 3, 50_000_000)
    assert config.http.user_agent == DEFAULT_USER_AGENT
    assert config.http.headers == {}


def test_relative_output_is_taken_from_the_working_directory(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config("start_urls: http://a.example/\noutput: mirrors/a\n")
    assert config.output_dir == tmp_path / "mirrors" / "a"


def test_config_is_immutable() -> None:
    config = parse_config("start_urls: [http://a.example/]")
    with pytest.raises(Exception, match="frozen"):
        config.queue_size = 5  # type: ignore[misc]


def test_shipped_configs_are_valid() -> None:
    site = load_config(ROOT / "configs" / "site.yaml")
    assert site.start_urls == ("https://books.toscrape.com/",)
    demo = load_config(ROOT / "configs" / "demo.yaml")
    assert demo.start_urls[0].startswith("http://127.0.0.1")


def test_wildcard_domains_and_null_limits() -> None:
    config = parse_config("start_urls: [http://a.example/]\nscope: {domains: ['*.Example.com'], "
                          "max_depth: null, max_pages: null}\n")
    assert config.scope.domains == ("*.example.com",)
    assert config.scope.max_depth is None and config.scope.max_pages is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "test.yaml: start_urls: required key is missing"),
    ("start_urls: []", "test.yaml:1: start_urls: needs at least 1 item(s)"),
    ("start_urls: [ftp://example.com/]", "test.yaml:1: start_urls: 'ftp://example.com/': not an http(s) URL"),
    ("start_urls: [example.com]", "not an http(s) URL"),
    ("start_urls: [http://a/]\nscope:\n  max_dept: 3\n",
     "test.yaml:3: scope.max_dept: unknown key (did you mean 'max_depth'?)"),
    ("start_urls: [http://a/]\nthread: {fetchers: 2}\n", "test.yaml:2: thread: unknown key (did you mean 'threads'?)"),
    ("start_urls: [http://a/]\nzzz: 1\n", "zzz: unknown key (known keys: start_urls, output"),
    ("start_urls: [http://a/]\nthreads: {fetchers: many}\n",
     "test.yaml:2: threads.fetchers: input should be a valid integer"),
    ("start_urls: [http://a/]\nthreads: {fetchers: 0}\n",
     "threads.fetchers: input should be greater than or equal to 1"),
    ("start_urls: [http://a/]\nscope: {exclude: ['([a-z']}\n", "scope.exclude.0: bad regex '([a-z'"),
    ("start_urls: [http://a/]\nscope: {max_depth: -1}\n",
     "scope.max_depth: input should be greater than or equal to 0"),
    ("start_urls: [http://a/]\nscope: {domains: ['http://a/']}\n", "scope.domains: 'http://a/' is not a host name"),
    ("start_urls: [http://a/]\nhttp: {headers: {'Bad Header': x}}\n", "'Bad Header' is not a valid header name"),
    ("start_urls: [http://a/]\nhttp: {headers: {X-A: \"a\\r\\nInjected: 1\"}}\n", "header 'X-A' contains a line break"),
    ("start_urls: [http://a/]\nstart_urls: [http://b/]\n", "test.yaml:2: invalid YAML: key 'start_urls' appears twice"),
    ("start_urls: [http://a/\n", "test.yaml:2: invalid YAML"),
    ("- just\n- a list\n", "the config must be a mapping"),
])
def test_bad_config_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config("/nonexistent/site.yaml")


def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    config = tmp_path / "bad.yaml"
    config.write_text(f"start_urls: [http://127.0.0.1:9/]\noutput: {output}\nscope: {{max_dept: 1}}\n")
    assert main([str(config)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{config}:3: scope.max_dept: unknown key (did you mean 'max_depth'?)" in error
    assert not output.exists()
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml"]


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["a.yaml", "b.yaml"]) == 2
    assert "usage" not in capsys.readouterr().out
