"""``hubbub compact --db FILE``: reports, dry runs, drops, and refuses a file a hub is using."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hubbub import FunctionAgent, Hub, HubClient, LocalLink, SqliteStore
from hubbub.cli import main
from hubbub.model.audit import AuditQuery
from tests.conftest import TIME_UNIT


async def _make(db: Path) -> str:
    """A database with one finished consulting channel (6 envelopes) and one still open."""
    async with Hub(SqliteStore(db)) as hub, HubClient(LocalLink(hub)) as client:
        alice = await client.register(FunctionAgent(lambda t: "hi", name="alice"))
        await client.register(FunctionAgent(lambda t: "4", name="bob"))
        done = await alice.open("consulting", "bob")
        await done.send("2+2?")
        await done.wait_closed(timeout=5 * TIME_UNIT)
        await alice.open("conversation", "bob")
        return done.id


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "hub.db"
    return path, asyncio.run(_make(path))


async def _lengths(db: Path) -> list[int]:
    store = SqliteStore(db)
    try:
        return sorted([await store.wal_length(c.channel_id) for c in await store.load_channels()])
    finally:
        await store.aclose()


async def _audit_count(db: Path) -> int:
    store = SqliteStore(db)
    try:
        return len(await store.read_audit(AuditQuery(limit=10_000)))
    finally:
        await store.aclose()


def test_dry_run_then_compact(db: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, closed_id = db
    assert main(["compact", "--db", str(path), "--retain-closed", "0s", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: would drop 6 envelopes of 1 closed channels and 0 audit records\n"
    assert asyncio.run(_lengths(path)) == [3, 6]
    audit = asyncio.run(_audit_count(path))
    assert audit > 2
    args = ["compact", "--db", str(path), "--retain-closed", "0s", "--audit-max-rows", "2", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["channels"] == 1
    assert report["envelopes"] == 6
    assert report["channel_ids"] == [closed_id]
    assert report["audit_records"] == audit - 2
    assert asyncio.run(_audit_count(path)) == 2
    assert report["dry_run"] is False
    assert asyncio.run(_lengths(path)) == [0, 3]
    # Nothing older than a day: nothing to drop.
    assert main(["compact", "--db", str(path), "--retain-closed", "1d"]) == 0
    assert "dropped 0 envelopes of 0 closed channels" in capsys.readouterr().out


def test_a_file_in_use_by_a_hub_is_refused(db: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = db
    store = SqliteStore(path)  # what a running hub holds: the file's lock
    try:
        assert main(["compact", "--db", str(path), "--retain-closed", "0s"]) == 1
    finally:
        asyncio.run(store.aclose())
    err = capsys.readouterr().err
    assert err.startswith(f"hubbub compact: {path} is in use by a running hub: stop it first")
    assert asyncio.run(_lengths(path)) == [3, 6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "nothing to do: pass --retain-closed, --closed-max-envelopes, --retain-audit or --audit-max-rows",
        ),
        (["--closed-max-envelopes", "-3"], "argument --closed-max-envelopes: expected 0 or more, got '-3'"),
        (["--retain-closed", "later"], "cannot read duration 'later'"),
        (["--audit-max-rows", "-1"], "argument --audit-max-rows: expected 0 or more, got '-1'"),
        (["--audit-max-rows", "many"], "argument --audit-max-rows: expected a whole number, got 'many'"),
    ],
)
def test_bad_flags_are_usage_errors(
    db: tuple[Path, str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["compact", "--db", str(db[0]), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    assert main(["compact", "--db", str(missing), "--retain-audit", "1d"]) == 1
    assert capsys.readouterr().err == f"hubbub compact: no database file {missing}\n"
    assert not missing.exists()
    assert main(["compact", "--db", str(tmp_path), "--retain-audit", "1d"]) == 1
    assert (
        capsys.readouterr().err == f"hubbub compact: {tmp_path} is a directory, not a hub's database file\n"
    )
