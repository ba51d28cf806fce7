"""The README's shell commands, run as written, so that they keep working.

Every command of a ```sh block, and every `$ ` line of an example, runs in the README's order
in a folder holding a copy of the project's configs, with `crawl` on the PATH and no terminal.
What needs the network is stood in for: books.toscrape.com, the README's example site, is the
sample site served on 127.0.0.1 (in the commands and in the copy of configs/site.yaml); the
crontab and systemctl are stand-ins that keep what they are given. What cannot run here is
listed in NOT_RUN, command by command, with why. The nightly job the README installs runs as
cron runs it -- from the home folder, twice: two nights -- before the first command that looks
at its result.

A command must exit 0, unless its example shows an error: then it must print exactly that.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = "https://books.toscrape.com/"
NOT_RUN = {
    "python3 -m venv .venv": "installing: needs the package index",
    ". .venv/bin/activate": "installing: needs the package index",
    "pip install -e .": "installing: needs the package index",
    "scripts/test": "the test suite itself (and installing what it needs)",
    "crawl serve configs/site.yaml": "a server, until Ctrl-C (tests/test_serve.py runs it)",
}
LOOKS_AT_THE_NIGHT = ("crawl status", "crawl diff")


@dataclass
class Command:
    text: str
    shown: str | None  # the output its example shows, if any


def readme_commands(text: str) -> list[Command]:
    commands = []
    for language, block in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        lines = block.splitlines()
        if language == "sh":
            commands += [Command(line, None) for line in lines if line.strip() and not line.startswith("#")]
        elif not language:
            for number, line in enumerate(lines):
                if line.startswith("$ "):
                    output = []
                    for after in lines[number + 1:]:
                        if after.startswith("$ "):
                            break
                        output.append(after)
                    commands.append(Command(line.removeprefix("$ "), "\n".join(output)))
    return commands


def runnable(command: str, seen: set[str]) -> str | None:
    """The parts of `command` (a && b) that can run here, or None."""
    parts = []
    for part in command.split(" && "):
        bare = part.split(" #", 1)[0].strip()
        if bare.split(" ", 1)[0] == "scripts/test":  # with pytest's arguments, or none
            bare = "scripts/test"
        if bare in NOT_RUN:
            seen.add(bare)
        else:
            parts.append(part)
    return " && ".join(parts) if parts else None


def stand_ins(folder: Path) -> Path:
    """crontab and systemctl that keep what they are given, in `folder`."""
    folder.mkdir()
    table = folder / "crontab.txt"
    scripts = {
        "crontab": f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {table} 2>/dev/null; else cat > {table}; fi\n',
        "systemctl": f'#!/bin/sh\necho "$@" >> {folder / "systemctl.log"}\n',
    }
    for name, script in scripts.items():
        path = folder / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return table


@pytest.mark.slow
def test_every_shell_command_of_the_readme_works_as_written(tmp_path: Path) -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    with SiteServer() as site:
        shutil.copytree(ROOT / "configs", tmp_path / "configs")
        config = tmp_path / "configs" / "site.yaml"
        config.write_text(config.read_text().replace(EXAMPLE_SITE, site.url)
                          .replace("[books.toscrape.com]", "[127.0.0.1]"))
        crontab = stand_ins(tmp_path / "bin")
        home = tmp_path / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home),
               "PATH": os.pathsep.join([str(tmp_path / "bin"), os.path.dirname(sys.executable), "/usr/bin", "/bin"])}

        def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=120, check=False)

        skipped: set[str] = set()
        nights = 0
        ran = 0
        for command in commands:
            text = runnable(command.text.replace(EXAMPLE_SITE, site.url), skipped)
            if text is None:
                continue
            if text.startswith(LOOKS_AT_THE_NIGHT) and crontab.exists() and not nights:
                job = crontab.read_text().splitlines()[-1].split(" ", 5)[5]  # what follows "0 2 * * *"
                for nights in (1, 2):
                    night = run(job, home)
                    assert night.returncode == 0, f"night {nights}: {job}\n{night.stderr}"
            result = run(text, tmp_path)
            ran += 1
            printed = (result.stdout + result.stderr).rstrip("\n")
            if command.shown is not None and command.shown.startswith("crawl: error:"):
                assert (result.returncode, printed) == (2, command.shown), command.text
            else:
                assert result.returncode == 0, f"{command.text}\n{printed}"
    assert skipped == set(NOT_RUN)  # each is still in the README, and nothing else is left out
    assert nights == 2 and ran >= 15
    assert len(list((tmp_path / "output" / "books" / "snapshots").iterdir())) == 2
