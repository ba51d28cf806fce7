"""Scheduling: crontab lines, systemd timers, run-scheduled, and quiet runs for cron."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crawler.cli.main import main
from crawler.demo.server import SiteServer
from tests import routes


def write_config(folder: Path, start: str, name: str = "site.yaml", **sections: object) -> Path:
    data = {"start_urls": [start], "output": str(folder / name.removesuffix(".yaml")),
            "http": {"timeout": 5, "retries": 0}, **sections}
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_schedule_prints_a_crontab_line_with_absolute_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "http://example.com/")
    assert main(["schedule", str(config), "--at", "02:30"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("30 2 * * * ")
    assert f"{sys.executable} -m crawler {config.resolve()}" in line
    assert f"--log-file {tmp_path / 'site' / 'crawl.log'}" in line
    assert line.endswith(f"# crawl:{config.resolve()}")


def test_schedule_prints_systemd_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "http://example.com/")
    assert main(["schedule", str(config), "--at", "02:00", "--systemd"]) == 0
    printed = capsys.readouterr().out
    assert "# ~/.config/systemd/user/crawl-site.service" in printed
    assert "OnCalendar=*-*-* 02:00:00" in printed and "Persistent=true" in printed
    assert f"ExecStart={sys.executable} -m crawler {config.resolve()}" in printed


@pytest.mark.parametrize("at", ["25:00", "2am", "02:61"])
def test_schedule_rejects_bad_times(tmp_path: Path, at: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", str(write_config(tmp_path, "http://example.com/")), "--at", at]) == 2
    assert "HH:MM" in capsys.readouterr().err


def test_schedule_install_replaces_the_line_of_the_same_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A stand-in `crontab` on PATH keeps the table in a file, as the real one would."""
    table = tmp_path / "crontab.txt"
    table.write_text("0 5 * * * backup.sh\n")
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = \"-l\" ]; then cat {table}; else cat > {table}; fi\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    config = write_config(tmp_path, "http://example.com/")
    assert main(["schedule", str(config), "--at", "02:00", "--install"]) == 0
    assert main(["schedule", str(config), "--at", "03:15", "--install"]) == 0
    lines = table.read_text().splitlines()
    assert lines[0] == "0 5 * * * backup.sh"
    assert len(lines) == 2 and lines[1].startswith("15 3 * * * ")
    assert "installed in your crontab" in capsys.readouterr().out


def test_run_scheduled_runs_each_config_on_its_schedule(tmp_path: Path) -> None:
    with SiteServer(root=None, routes={"/": routes.html(routes.page())}) as server:
        configs = tmp_path / "configs"
        configs.mkdir()
        write_config(configs, server.url, "every-2s.yaml", schedule="* * * * * */2",
                     mirror={"sitemaps": False}, politeness={"robots": False})
        write_config(configs, server.url, "unscheduled.yaml")
        result = subprocess.run([sys.executable, "-m", "crawler", "run-scheduled", str(configs), "--max-runs", "2"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        # A run still going when the next is due (a loaded machine) skips that one.
        started = result.stderr.count("every-2s.yaml: starting run")
        skipped = result.stderr.count("every-2s.yaml: the previous run is still going; skipping this one")
        assert started >= 1 and started + skipped == 2, result.stderr
        assert server.requests()["/"] == started
    assert result.stderr.count("every-2s.yaml: exit 0, completed") == started
    assert "unscheduled" not in result.stderr
    assert (configs / "every-2s" / "crawl.log").is_file()


def test_run_scheduled_needs_a_scheduled_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, "http://example.com/")
    assert main(["run-scheduled", str(tmp_path)]) == 2
    assert "no config" in capsys.readouterr().err


def test_without_a_terminal_a_good_run_prints_nothing_and_a_bad_one_one_line(tmp_path: Path) -> None:
    site = {"/": routes.html(routes.page("/a.html")), "/a.html": routes.html(routes.page())}
    with SiteServer(root=None, routes=site) as server:
        config = write_config(tmp_path, server.url, mirror={"sitemaps": False})
        good = subprocess.run([sys.executable, "-m", "crawler", str(config), "--log-file", str(tmp_path / "log")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (good.returncode, good.stdout, good.stderr) == (0, "", "")
        assert "completed:" in (tmp_path / "log").read_text()  # the summary went to the log
        server.routes["/"] = routes.status(503)
        bad = subprocess.run([sys.executable, "-m", "crawler", str(config)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("crawl: start URL failed")


def project_with_relative_output(tmp_path: Path, start: str, name: str = "project") -> Path:
    """A project folder as the README sets it up: configs/site.yaml with `output: output/site`."""
    project = tmp_path / name
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "site.yaml").write_text(yaml.safe_dump({
        "start_urls": [start], "output": "output/site", "http": {"timeout": 5, "retries": 0},
        "mirror": {"sitemaps": False}, "politeness": {"robots": False}}))
    return project


@pytest.mark.parametrize("folder", ["project", "100% mine"])
def test_the_crontab_line_writes_where_a_crawl_by_hand_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str], folder: str) -> None:
    """cron runs the line with sh from $HOME: the mirror, its log and `crawl status` must still
    be in the project the schedule was made from."""
    with SiteServer(root=None, routes={"/": routes.html(routes.page())}) as server:
        project = project_with_relative_output(tmp_path, server.url, folder)
        monkeypatch.chdir(project)
        assert main(["schedule", "configs/site.yaml", "--at", "02:00"]) == 0
        line = capsys.readouterr().out.strip().split(" ", 5)[5]  # what follows "0 2 * * *"
        # cron ends the command at the first unescaped "%" (the rest is its input) and reads
        # "\%" as "%".
        assert not re.search(r"(?<!\\)%", line)
        command = line.replace("\\%", "%")
        home = tmp_path / "home"
        home.mkdir()
        cron = subprocess.run(["sh", "-c", command], cwd=home, env={**os.environ, "HOME": str(home)},
                              capture_output=True, text=True, timeout=60, check=False)
    assert (cron.returncode, cron.stdout, cron.stderr) == (0, "", "")
    assert list(home.iterdir()) == []
    output = project / "output" / "site"
    assert (output / "report.json").is_file()
    assert "completed:" in (output / "crawl.log").read_text()
    assert main(["status", "configs/site.yaml"]) == 0
    assert "completed" in capsys.readouterr().out


def test_the_systemd_service_runs_in_the_project_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_relative_output(tmp_path, "http://example.com/")
    monkeypatch.chdir(project)
    assert main(["schedule", "configs/site.yaml", "--at", "02:00", "--systemd"]) == 0
    printed = capsys.readouterr().out
    assert f"\nWorkingDirectory={project}\n" in printed
    assert f"--log-file {project / 'output' / 'site' / 'crawl.log'}" in printed


def test_set_options_of_a_schedule_hold_for_every_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "http://example.com/")
    assert main(["schedule", str(config), "--at", "02:00", "--set", "snapshots.keep=30",
                 "--set", f"output={tmp_path}/elsewhere"]) == 0
    line = capsys.readouterr().out
    assert f"--set snapshots.keep=30 --set output={tmp_path}/elsewhere" in line
    assert f"--log-file {tmp_path / 'elsewhere' / 'crawl.log'}" in line  # where that output is
