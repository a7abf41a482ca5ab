"""``KnowledgeStore``: one contract suite over every implementation, then what only the disk store owes."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hubbub import (
    DiskKnowledgeStore,
    KnowledgeStore,
    MemoryKnowledgeStore,
    StorageError,
    UsageError,
)
from hubbub.storage.knowledge import RESERVED_PREFIX, check_path
from tests.conftest import TIME_UNIT


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KnowledgeStore:
    if request.param == "memory":
        return MemoryKnowledgeStore()
    return DiskKnowledgeStore(tmp_path / "kb")


# --- contract ------------------------------------------------------------------------------------


async def test_missing_path_reads_none_and_deletes_false(store: KnowledgeStore) -> None:
    assert await store.read("/nope.md") is None
    assert await store.read_bytes("/nope.md") is None
    assert await store.read_range("/nope.md", 0, 4) is None
    assert await store.exists("/nope.md") is False
    assert await store.delete("/nope.md") is False
    assert await store.list() == []
    assert await store.list("/nope") == []


async def test_write_then_read_exact_text_and_bytes(store: KnowledgeStore) -> None:
    await store.write("/agents/a1/notes.md", "# Notes\nfirst")
    assert await store.read("/agents/a1/notes.md") == "# Notes\nfirst"
    assert await store.read_bytes("/agents/a1/notes.md") == b"# Notes\nfirst"
    assert await store.exists("/agents/a1/notes.md") is True

    await store.write("/agents/a1/notes.md", "replaced")
    assert await store.read("/agents/a1/notes.md") == "replaced"


async def test_unicode_is_stored_as_utf8(store: KnowledgeStore) -> None:
    text = "héllo wörld ✓ 日本語 🎉"
    await store.write("/ünï/日本.md", text)
    assert await store.read("/ünï/日本.md") == text
    assert await store.read_bytes("/ünï/日本.md") == text.encode("utf-8")
    assert await store.list("/ünï") == ["/ünï/日本.md"]


async def test_bytes_round_trip_and_text_read_of_binary_is_refused(store: KnowledgeStore) -> None:
    blob = bytes(range(256))
    await store.write("/bin/blob", blob)
    assert await store.read_bytes("/bin/blob") == blob
    with pytest.raises(UsageError, match=r"'/bin/blob' holds bytes that are not UTF-8.*read_bytes"):
        await store.read("/bin/blob")

    await store.write("/bin/empty", b"")
    assert await store.read_bytes("/bin/empty") == b""
    assert await store.read("/bin/empty") == ""
    assert await store.exists("/bin/empty") is True


async def test_append_creates_extends_and_returns_offsets(store: KnowledgeStore) -> None:
    assert await store.append("/log/a.jsonl", "one\n") == 0
    assert await store.append("/log/a.jsonl", b"two\n") == 4
    assert await store.append("/log/a.jsonl", "drei ✓\n") == 8
    assert await store.read("/log/a.jsonl") == "one\ntwo\ndrei ✓\n"
    assert await store.read_range("/log/a.jsonl", 4) == b"two\ndrei \xe2\x9c\x93\n"
    assert await store.read_range("/log/a.jsonl", 4, 8) == b"two\n"
    assert await store.read_range("/log/a.jsonl", 100) == b""
    assert await store.read_range("/log/a.jsonl", 15, 1000) == b"\x93\n"


async def test_append_after_write_continues_the_file(store: KnowledgeStore) -> None:
    await store.write("/f.txt", "abc")
    assert await store.append("/f.txt", "def") == 3
    assert await store.read("/f.txt") == "abcdef"


async def test_bad_range_and_bad_data_are_usage_errors(store: KnowledgeStore) -> None:
    await store.write("/f.txt", "abc")
    with pytest.raises(UsageError, match=r"bad byte range \[-1, None\) for '/f.txt'"):
        await store.read_range("/f.txt", -1)
    with pytest.raises(UsageError, match=r"bad byte range \[3, 2\)"):
        await store.read_range("/f.txt", 3, 2)
    bad: Any = 42
    with pytest.raises(UsageError, match=r"data for '/f\.txt' must be str or bytes, not int"):
        await store.write("/f.txt", bad)
    with pytest.raises(UsageError, match="not valid UTF-8"):
        await store.append("/f.txt", "\udcff")
    assert await store.read("/f.txt") == "abc"


async def test_list_returns_sorted_full_paths_under_a_directory(store: KnowledgeStore) -> None:
    for path in ["/b.md", "/a/z.md", "/a/b/c.md", "/a/a.md", "/ab.md", "/c/d/e/f.md"]:
        await store.write(path, path)
    assert await store.list() == ["/a/a.md", "/a/b/c.md", "/a/z.md", "/ab.md", "/b.md", "/c/d/e/f.md"]
    assert await store.list("/") == await store.list()
    assert await store.list("/a") == ["/a/a.md", "/a/b/c.md", "/a/z.md"]
    assert await store.list("/a/") == ["/a/a.md", "/a/b/c.md", "/a/z.md"]
    assert await store.list("/a/b") == ["/a/b/c.md"]
    assert await store.list("/c/d") == ["/c/d/e/f.md"]
    assert await store.list("/b.md") == []  # a file, not a directory
    assert await store.list("/x") == []


async def test_delete_removes_only_that_file_and_empty_directories_vanish(store: KnowledgeStore) -> None:
    await store.write("/a/b/c.md", "c")
    await store.write("/a/d.md", "d")
    assert await store.delete("/a/b") is False  # a directory is not a file
    assert await store.delete("/a/b/c.md") is True
    assert await store.delete("/a/b/c.md") is False
    assert await store.read("/a/b/c.md") is None
    assert await store.exists("/a/b/c.md") is False
    assert await store.list() == ["/a/d.md"]
    assert await store.list("/a/b") == []
    # /a/b is gone, so a file may now take its name
    await store.write("/a/b", "now a file")
    assert await store.list("/a") == ["/a/b", "/a/d.md"]


async def test_a_path_is_a_file_or_a_directory_never_both(store: KnowledgeStore) -> None:
    await store.write("/a/b/c.md", "c")
    assert await store.exists("/a/b") is False
    assert await store.read("/a/b") is None
    with pytest.raises(UsageError, match=r"cannot store a file at '/a/b': it is a directory"):
        await store.write("/a/b", "x")
    with pytest.raises(UsageError, match=r"cannot store a file at '/a/b'"):
        await store.append("/a/b", "x")
    with pytest.raises(UsageError, match=r"cannot store a file at '/a/b/c.md/d'"):
        await store.write("/a/b/c.md/d", "x")
    assert await store.read("/a/b/c.md/d") is None
    assert await store.list() == ["/a/b/c.md"]
    assert await store.read("/a/b/c.md") == "c"


HOSTILE_PATHS = [
    "",
    "relative/notes.md",
    "/",
    "/../etc/passwd",
    "/a/../../etc/passwd",
    "/a/./b.md",
    "/a//b.md",
    "//etc/passwd",
    "/a/b/",
    "/a\\..\\..\\etc\\passwd",
    "/a\x00/b.md",
    "/a/\nb.md",
    "/" + "x" * 256,
    f"/a/{RESERVED_PREFIX}1234",
    "/a/\udcff.md",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_hostile_paths_are_refused_by_every_method(store: KnowledgeStore, path: str) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: store.read(path),
        lambda: store.read_bytes(path),
        lambda: store.read_range(path, 0),
        lambda: store.write(path, "x"),
        lambda: store.append(path, "x"),
        lambda: store.delete(path),
        lambda: store.exists(path),
    ]
    for call in calls:
        with pytest.raises(UsageError) as caught:
            await call()
        assert repr(path) in str(caught.value)
        assert caught.value.reason == "bad_path"
    assert await store.list() == []


@pytest.mark.parametrize("prefix", ["", "a", "/..", "/a/../..", "/a//", "/a\\b", "/\x00"])
async def test_hostile_list_prefixes_are_refused(store: KnowledgeStore, prefix: str) -> None:
    with pytest.raises(UsageError, match="invalid knowledge path"):
        await store.list(prefix)


async def test_concurrent_appends_land_whole(store: KnowledgeStore) -> None:
    lines = [f"{i:03d} {'abcdefgh'[i % 8] * (1 + (i * 397) % 4000)}\n" for i in range(200)]
    offsets = await asyncio.gather(*(store.append("/log/shared.txt", line) for line in lines))
    content = await store.read("/log/shared.txt")
    assert content is not None
    assert sorted(content.splitlines(keepends=True)) == lines
    assert sorted(offsets) == sorted({*offsets})
    for line, offset in zip(lines, offsets, strict=True):
        assert content[offset : offset + len(line)] == line  # ASCII: byte offsets are char offsets


def test_check_path_returns_segments() -> None:
    assert check_path("/agents/a1/notes.md") == ("agents", "a1", "notes.md")
    assert check_path("/", directory=True) == ()
    assert check_path("/agents/", directory=True) == ("agents",)
    assert check_path("/.hidden") == (".hidden",)
    assert check_path("/" + "é" * 127) == ("é" * 127,)  # 254 bytes
    with pytest.raises(UsageError, match="limit is 255"):
        check_path("/" + "é" * 128)


# --- disk only -----------------------------------------------------------------------------------


async def test_disk_files_live_under_root_and_survive_a_new_store(tmp_path: Path) -> None:
    store = DiskKnowledgeStore(tmp_path / "kb")
    await store.write("/agents/a1/notes.md", "kept")
    await store.append("/agents/a1/log.txt", "x\n")
    assert (tmp_path / "kb/agents/a1/notes.md").read_text() == "kept"
    reopened = DiskKnowledgeStore(str(tmp_path / "kb"))
    assert await reopened.read("/agents/a1/notes.md") == "kept"
    assert await reopened.list() == ["/agents/a1/log.txt", "/agents/a1/notes.md"]


async def test_disk_write_is_atomic_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DiskKnowledgeStore(tmp_path)
    await store.write("/doc.md", "old content")

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match=r"could not write knowledge file '/doc.md'.*simulated crash"):
        await store.write("/doc.md", "new content that must not show")
    monkeypatch.undo()

    assert await store.read("/doc.md") == "old content"
    assert sorted(os.listdir(tmp_path)) == ["doc.md"]  # no temp file left behind
    await store.write("/doc.md", "new")
    assert await store.read("/doc.md") == "new"
    assert sorted(os.listdir(tmp_path)) == ["doc.md"]


async def test_disk_list_skips_leftover_temp_files(tmp_path: Path) -> None:
    store = DiskKnowledgeStore(tmp_path)
    await store.write("/a/doc.md", "x")
    (tmp_path / "a" / f"{RESERVED_PREFIX}deadbeef").write_bytes(b"half a write")
    (tmp_path / "a" / "back\\slash").write_bytes(b"not a virtual path")
    assert await store.list() == ["/a/doc.md"]


@pytest.fixture
def escape(tmp_path: Path) -> tuple[DiskKnowledgeStore, Path]:
    """A store whose root holds symlinks out of it; returns the store and the outside directory."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.md").write_text("secret")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "evil.md").symlink_to(outside / "secret.md")
    (root / "dangling.md").symlink_to(outside / "missing.md")
    (root / "inside.md").write_text("fine")
    (root / "alias.md").symlink_to(root / "inside.md")
    return DiskKnowledgeStore(root), outside


@pytest.mark.parametrize("path", ["/link/secret.md", "/link/new.md", "/evil.md", "/dangling.md"])
async def test_disk_symlinks_out_of_root_are_refused(
    escape: tuple[DiskKnowledgeStore, Path], path: str
) -> None:
    store, outside = escape
    calls: list[Callable[[], Any]] = [
        lambda: store.read(path),
        lambda: store.read_range(path, 0),
        lambda: store.write(path, "pwned"),
        lambda: store.append(path, "pwned"),
        lambda: store.delete(path),
        lambda: store.exists(path),
    ]
    for call in calls:
        with pytest.raises(UsageError, match=r"resolves outside the store root") as caught:
            await call()
        assert repr(path) in str(caught.value)
        assert caught.value.reason == "path_traversal"
    with pytest.raises(UsageError, match="'/link' resolves outside"):
        await store.list("/link")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md"]
    assert (outside / "secret.md").read_text() == "secret"


async def test_disk_list_shows_only_what_stays_inside_root(escape: tuple[DiskKnowledgeStore, Path]) -> None:
    store, _ = escape
    assert await store.list() == ["/alias.md", "/inside.md"]
    assert await store.read("/alias.md") == "fine"


_AUDITED = {"open", "os.mkdir", "os.remove", "os.rename", "os.rmdir", "os.scandir", "os.listdir"}
_seen: list[tuple[str, int]] | None = None
_seen_root = ""
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _seen is not None and event in _AUDITED and args and str(args[0]).startswith(_seen_root):
        _seen.append((event, threading.get_ident()))


@pytest.fixture
def real_tmp_path(tmp_path: Path) -> str:
    return os.path.realpath(tmp_path)


async def test_disk_file_operations_never_run_on_the_loop_thread(real_tmp_path: str) -> None:
    global _seen, _seen_root, _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed: install one, switched by _seen
        sys.addaudithook(_audit)
        _hook_installed = True
    store = DiskKnowledgeStore(os.path.join(real_tmp_path, "kb"))
    _seen, _seen_root = [], real_tmp_path
    try:
        await store.write("/a/b/c.md", "x")
        await store.append("/a/log.txt", "x")
        await store.append("/a/log.txt", "y")
        assert await store.read("/a/b/c.md") == "x"
        assert await store.read_range("/a/log.txt", 1) == b"y"
        assert await store.list("/a") == ["/a/b/c.md", "/a/log.txt"]
        assert await store.delete("/a/b/c.md") is True
        seen = _seen
    finally:
        _seen = None
    events = {event for event, _ in seen}
    assert {"open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.scandir"} <= events
    loop_thread = threading.get_ident()
    assert [event for event, thread in seen if thread == loop_thread] == []


async def test_disk_large_write_does_not_block_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ticking task keeps running while a big write is in flight.

    The write's fsync is held until the ticker has ticked 100 times, so the test does
    not depend on how fast the disk is: a write that blocked the loop would starve the
    ticker and fail here instead of passing by luck.
    """
    store = DiskKnowledgeStore(tmp_path)
    release = threading.Event()
    fsync_threads: list[int] = []
    real_fsync = os.fsync

    def gated_fsync(fd: int) -> None:
        fsync_threads.append(threading.get_ident())
        release.wait(timeout=5 * TIME_UNIT)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", gated_fsync)
    payload = os.urandom(8 * 1024 * 1024)
    write = asyncio.create_task(store.write("/big.bin", payload))
    ticks = 0
    while not write.done():
        await asyncio.sleep(0)
        ticks += 1
        if ticks == 100:
            assert not write.done()
            release.set()
    await write
    monkeypatch.undo()

    assert ticks >= 100
    assert fsync_threads
    assert threading.get_ident() not in fsync_threads
    assert await store.read_bytes("/big.bin") == payload


async def test_disk_cancelled_append_holds_the_path_until_its_thread_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling an append cannot stop its thread; the next append on the path waits for it."""
    store = DiskKnowledgeStore(tmp_path)
    entered, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def gated_fsync(fd: int) -> None:
        if not entered.is_set():
            entered.set()
            release.wait(timeout=5 * TIME_UNIT)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", gated_fsync)
    lines = [f"{i} {'x' * 1000}\n" for i in range(3)]
    tasks = [asyncio.create_task(store.append("/log.txt", line)) for line in lines]
    assert await asyncio.to_thread(entered.wait, 5 * TIME_UNIT)
    tasks[0].cancel()
    for _ in range(100):
        await asyncio.sleep(0)
    assert not tasks[0].done()  # still waiting for its thread, holding the path's lock
    # no other append has started
    assert await asyncio.to_thread(os.path.getsize, tmp_path / "log.txt") == len(lines[0])
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    monkeypatch.undo()

    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:] == [len(lines[0]), 2 * len(lines[0])]
    assert await store.read("/log.txt") == "".join(lines)
