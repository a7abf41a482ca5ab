"""docs/cli.md covers the command line: every remote command has a section naming each of its flags,
and the command list at the top names every command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hubbub.cli import COMMANDS, _parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
COMMON = {"--url", "--key", "--as", "--timeout", "--json", "--help"}
LOCAL = {"demo", "serve", "mcp", "compact"}  # documented in the README, docs/mcp.md, docs/storage.md


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _section(name: str) -> str:
    match = re.search(rf"^### `hubbub {name}\b.*$", DOC, re.MULTILINE)
    assert match is not None, f"docs/cli.md has no section for hubbub {name}"
    end = re.compile(r"^##", re.MULTILINE).search(DOC, match.end())
    return DOC[match.start() : end.start() if end else len(DOC)]


def test_the_command_list_names_every_command() -> None:
    listed = re.findall(r"^hubbub (\w+)", DOC.split("```")[1], re.MULTILINE)
    assert sorted(listed) == sorted(c.name for c in COMMANDS)


@pytest.mark.parametrize("name", sorted(c.name for c in COMMANDS if c.name not in LOCAL))
def test_each_command_and_flag_is_documented(name: str) -> None:
    section = _section(name)
    flags = {
        option
        for action in _subparsers()[name]._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    assert flags >= COMMON  # every remote command takes the common flags
    missing = sorted(flag for flag in flags - COMMON if flag not in section)
    assert missing == [], f"hubbub {name}: flags not in its section of docs/cli.md: {missing}"
    for flag in COMMON - {"--help"}:
        assert f"`{flag}" in DOC


def test_compact_and_its_flags_are_documented() -> None:
    section = _section("compact")
    flags = {o for a in _subparsers()["compact"]._actions for o in a.option_strings if o.startswith("--")}
    assert sorted(flag for flag in flags - {"--help"} if f"`{flag}" not in section) == []
