from __future__ import annotations

import os
from pathlib import Path

import pytest

from crawler.cli.main import main
from crawler.config import DEFAULT_USER_AGENT
from crawler.config_file import load_config, parse_config, parse_setting
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
    assert (config.threads.fetchers, config.threads.parsers, config.threads.writers) == (8, 1, 1)
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
    ("start_urls: [http://a/]\ntimeout: 5\n", "test.yaml:2: timeout: unknown key (did you mean 'http.timeout'?)"),
    ("start_urls: [http://a/]\nhttp: {robots: false}\n",
     "test.yaml:2: http.robots: unknown key (did you mean 'politeness.robots'?)"),
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
    ("start_urls: [http://a/]\nstate: {backend: redis}\n", "state: backend: redis needs url: redis://HOST:6379/0"),
    ("start_urls: [http://a/]\nstate: {backend: redis, url: 'http://x/'}\n", "'http://x/' is not a Redis URL"),
    ("start_urls: [http://a/]\nstate: {backend: mysql}\n", "state.backend: input should be 'sqlite' or 'redis'"),
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


# -- --set KEY=VALUE and `crawl config set` -----------------------------------------------------

SITE_YAML = (ROOT / "configs" / "site.yaml").read_text()


def test_set_overrides_any_dotted_key_for_one_run() -> None:
    config = parse_config(SITE_YAML, "site.yaml",
                          {"snapshots.keep": 30, "scope.exclude": ["/private/"], "schedule": "0 2 * * *"})
    assert config.snapshots.keep == 30
    assert config.snapshots.health.min_pages_ratio == 0.5  # the rest of the section stays as written
    assert config.scope.exclude == ("/private/",) and config.scope.max_depth == 20
    assert config.schedule == "0 2 * * *"


@pytest.mark.parametrize(("setting", "message"), [
    ("snapshots.keep=many", "--set snapshots.keep: input should be a valid integer"),
    ("scope.max_dept=3", "--set scope.max_dept: unknown key (did you mean 'max_depth'?)"),
    ("snapshots={keep: -1}", "--set snapshots: snapshots.keep: input should be greater than or equal to 0"),
    ("output_formats=[files, pdf]", "--set output_formats: output_formats.1: input should be 'files' or 'warc'"),
    ("start_urls.first=x", "--set start_urls.first: start_urls in site.yaml is not a mapping of keys"),
    ("snapshots.keep", "--set snapshots.keep: give KEY=VALUE, e.g. snapshots.keep=30"),
    ("=3", "--set =3: give KEY=VALUE"),
    ("scope.exclude=[unclosed", "--set scope.exclude: cannot read '[unclosed' as a YAML value"),
])
def test_a_bad_setting_is_one_line_naming_its_key(setting: str, message: str) -> None:
    def load() -> None:
        key, value = parse_setting(setting)
        parse_config(SITE_YAML, "site.yaml", {key: value})

    with pytest.raises(ConfigError) as caught:
        load()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_cli_set_applies_to_the_run_and_its_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML)
    assert main(["check", str(config), "--set", "scope.max_depth=0", "--set", "snapshots.keep=30",
                 "--no-robots"]) == 0
    assert "max_depth 0; robots.txt obeyed; snapshots, keep 30" in capsys.readouterr().out
    assert main(["status", str(config), "--set", "scope.max_dept=1"]) == 2
    assert capsys.readouterr().err == "crawl: error: --set scope.max_dept: unknown key (did you mean 'max_depth'?)\n"
    assert config.read_text() == SITE_YAML  # --set changes nothing in the file


def test_config_set_changes_the_file_for_good_and_only_that_value(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML)
    config.chmod(0o640)
    assert main(["config", "set", str(config), "snapshots.keep=30", "snapshots.health.min_pages_ratio=0.4"]) == 0
    assert capsys.readouterr().out == (f"{config}: snapshots.keep: 0 -> 30\n"
                                       f"{config}: snapshots.health.min_pages_ratio: 0.5 -> 0.4\n")
    expected = SITE_YAML.replace("  keep: 0\n", "  keep: 30\n").replace(
        "    min_pages_ratio: 0.5    #", "    min_pages_ratio: 0.4    #")
    assert config.read_text() == expected  # every comment and line kept
    assert config.stat().st_mode & 0o777 == 0o640
    assert load_config(config).snapshots.keep == 30


def test_config_set_adds_missing_keys_where_they_belong(tmp_path: Path) -> None:
    config = tmp_path / "demo.yaml"
    text = (ROOT / "configs" / "demo.yaml").read_text()
    config.write_text(text)
    assert main(["config", "set", str(config), "threads.fetchers=16", "politeness.delay=0.5",
                 "scope.exclude=[/private/]", "schedule=0 2 * * *"]) == 0
    edited = config.read_text()
    assert "threads: {fetchers: 16, parsers: 1, writers: 1}\n" in edited  # a flow mapping stays one
    assert "scope:\n  max_depth: 10\n  exclude: [/private/]\n" in edited
    assert edited.startswith(text.split("threads:")[0])  # the comments at the top are untouched
    loaded = load_config(config)
    assert (loaded.threads.fetchers, loaded.politeness.delay, loaded.scope.exclude, loaded.schedule) == \
        (16, 0.5, ("/private/",), "0 2 * * *")


@pytest.mark.parametrize("setting", ["snapshots.keep=-1", "scope.max_dept=2", "start_urls.a=1", "nothing"])
def test_config_set_refuses_a_bad_setting_and_leaves_the_file_alone(tmp_path: Path, setting: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML)
    assert main(["config", "set", str(config), setting]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"crawl: error: config set {setting.partition('=')[0]}") and error.count("\n") == 1
    assert config.read_text() == SITE_YAML
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]
