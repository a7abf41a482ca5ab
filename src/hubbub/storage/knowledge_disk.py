"""``DiskKnowledgeStore``: virtual paths as files under a root directory.

Every file operation runs in a worker thread (the loop's default executor), so
a slow disk stalls the caller, never the event loop. Durability:

- ``write`` is atomic and durable: the data goes to a temp file in the target's
  directory, is fsynced, renamed over the target with ``os.replace`` and the
  directory is fsynced. Readers, and the file after a crash, hold the old
  content or the new, never a mix. A crash mid-write can leave a temp file
  (named with :data:`~hubbub.storage.knowledge.RESERVED_PREFIX`); ``list``
  skips such files and no virtual path can name them.
- ``append`` opens the file in append mode, writes and fsyncs it (and fsyncs
  the directory when it created the file). After it returns the bytes are on
  disk; a crash during an append can leave part of that append at the end of
  the file, never damage what was there before.

Within one store, ``write``, ``append`` and ``delete`` on the same path are
serialized by a per-path ``asyncio.Lock``, so appends from many tasks land
whole, one after another, and the offset ``append`` returns is exact. Other
processes writing the same files get atomic ``write``s but no such ordering.

Path traversal is refused with ``UsageError``: paths are checked by
:func:`~hubbub.storage.knowledge.check_path`, then resolved (symlinks included)
and refused when they land outside the root. The check guards against hostile
*paths*; whoever can change the directory tree under the root while the store
runs is trusted. POSIX only (directory fsync, file names as given).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import functools
import os
import secrets
import stat
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import StorageError, UsageError
from .knowledge import RESERVED_PREFIX, KnowledgeStore, check_path, check_range, conflict_error, encode_data

__all__ = ["DiskKnowledgeStore"]

_T = TypeVar("_T")

_OPEN_RETRIES = 8
"""A concurrent ``delete`` may prune a directory between our making it and opening a file in it."""


class DiskKnowledgeStore(KnowledgeStore):
    """Files under ``root`` (created on first write); see the module docstring for durability.

    ``/agents/a1/notes.md`` is stored at ``root/agents/a1/notes.md``. Nothing to
    close: the store holds no open files or threads between calls.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return f"DiskKnowledgeStore({self.root!r})"

    async def read_bytes(self, path: str) -> bytes | None:
        segments = check_path(path)
        return await _off_loop(self._read, path, segments, 0, None)

    async def read_range(self, path: str, start: int, end: int | None = None) -> bytes | None:
        segments = check_path(path)
        check_range(path, start, end)
        return await _off_loop(self._read, path, segments, start, end)

    async def write(self, path: str, data: str | bytes) -> None:
        """Replace the file atomically; after this returns the new content is durable."""
        segments = check_path(path)
        payload = encode_data(path, data)
        lock = self._lock(path)
        async with lock:
            await _off_loop(self._write, path, segments, payload)

    async def append(self, path: str, data: str | bytes) -> int:
        """Append and fsync; after this returns the appended bytes are durable."""
        segments = check_path(path)
        payload = encode_data(path, data)
        lock = self._lock(path)
        async with lock:
            return await _off_loop(self._append, path, segments, payload)

    async def delete(self, path: str) -> bool:
        segments = check_path(path)
        lock = self._lock(path)
        async with lock:
            return await _off_loop(self._delete, path, segments)

    async def exists(self, path: str) -> bool:
        segments = check_path(path)
        return await _off_loop(self._exists, path, segments)

    async def list(self, prefix: str = "/") -> builtins.list[str]:
        segments = check_path(prefix, directory=True)
        return await _off_loop(self._list, prefix, segments)

    def _lock(self, path: str) -> asyncio.Lock:
        # Weak values: a path's lock lives while some task holds or awaits it, then goes.
        lock = self._locks.get(path)
        if lock is None:
            lock = self._locks[path] = asyncio.Lock()
        return lock

    # Everything below runs in a worker thread.

    def _locate(self, path: str, segments: tuple[str, ...]) -> tuple[str, str]:
        """The real root and the file's path under it; refuse a path resolving outside the root."""
        root = os.path.realpath(self.root)
        target = os.path.join(root, *segments)
        if not _inside(root, os.path.realpath(target)):
            raise UsageError(
                f"knowledge path {path!r} resolves outside the store root {self.root!r} (through a symlink)",
                reason="path_traversal",
            )
        return root, target

    def _read(self, path: str, segments: tuple[str, ...], start: int, end: int | None) -> bytes | None:
        _, target = self._locate(path, segments)
        try:
            with open(target, "rb") as file:
                if start:
                    file.seek(start)
                return file.read() if end is None else file.read(end - start)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise _storage_error("read", path, exc) from exc

    def _write(self, path: str, segments: tuple[str, ...], payload: bytes) -> None:
        root, target = self._locate(path, segments)
        temp = os.path.join(os.path.dirname(target), RESERVED_PREFIX + secrets.token_hex(8))
        with _mapped("write", path):
            fd = _open_making_dirs(root, segments, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                try:
                    _write_all(fd, payload)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            _fsync_dir(os.path.dirname(target))

    def _append(self, path: str, segments: tuple[str, ...], payload: bytes) -> int:
        root, target = self._locate(path, segments)
        with _mapped("append", path):
            created = False
            try:
                fd = os.open(target, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                fd = _open_making_dirs(root, segments, target, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                created = True
            try:
                offset = os.fstat(fd).st_size
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(os.path.dirname(target))
            return offset

    def _delete(self, path: str, segments: tuple[str, ...]) -> bool:
        root, target = self._locate(path, segments)
        with _mapped("delete", path):
            try:
                if stat.S_ISDIR(os.stat(target).st_mode):
                    return False
                os.unlink(target)
            except (FileNotFoundError, NotADirectoryError):
                return False
            directory = os.path.dirname(target)
            _fsync_dir(directory)
            # Directories are implicit: drop the ones this delete emptied, up to the root.
            while directory != root:
                try:
                    os.rmdir(directory)
                except OSError:
                    break
                directory = os.path.dirname(directory)
            return True

    def _exists(self, path: str, segments: tuple[str, ...]) -> bool:
        _, target = self._locate(path, segments)
        return os.path.isfile(target)

    def _list(self, prefix: str, segments: tuple[str, ...]) -> builtins.list[str]:
        root, directory = self._locate(prefix, segments)
        found: builtins.list[str] = []
        pending = [(directory, "/" + "".join(f"{s}/" for s in segments))]
        while pending:
            directory, virtual = pending.pop()
            try:
                entries = builtins.list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise _storage_error("list", prefix, exc) from exc
            for entry in entries:
                path = virtual + entry.name
                try:
                    check_path(path)  # skips temp files and names no virtual path can spell
                except UsageError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, path + "/"))
                elif entry.is_file(follow_symlinks=False) or (
                    entry.is_symlink() and _inside(root, os.path.realpath(entry.path)) and entry.is_file()
                ):
                    found.append(path)
        return sorted(found)


async def _off_loop(function: Callable[..., _T], *args: object) -> _T:
    """Run ``function(*args)`` in the loop's default executor.

    The thread cannot be stopped, so a cancelled caller still waits for it to end
    before the cancellation goes on: a path lock is never released while its file
    is being written.
    """
    future = asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise


def _inside(root: str, resolved: str) -> bool:
    return os.path.commonpath([root, resolved]) == root


def _open_making_dirs(root: str, segments: tuple[str, ...], file: str, flags: int) -> int:
    """Open ``file`` (in the directory ``segments[:-1]`` names), making missing directories."""
    for attempt in range(_OPEN_RETRIES):
        _make_dirs(root, segments[:-1])
        try:
            return os.open(file, flags, 0o644)
        except FileNotFoundError:
            if attempt == _OPEN_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _make_dirs(root: str, segments: tuple[str, ...]) -> None:
    """Make the directories ``segments`` under ``root``, fsyncing each new entry's parent."""
    if os.path.isdir(os.path.join(root, *segments)):
        return
    os.makedirs(root, exist_ok=True)
    current = root
    for segment in segments:
        parent, current = current, os.path.join(current, segment)
        try:
            os.mkdir(current)
        except FileExistsError:
            if not os.path.isdir(current):
                raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", current) from None
            continue
        _fsync_dir(parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: str) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _mapped(operation: str, path: str) -> Iterator[None]:
    """Map OS errors to hubbub's: file/directory clashes are usage errors, the rest storage errors."""
    try:
        yield
    except IsADirectoryError as exc:
        raise conflict_error(path, "it is a directory") from exc
    except NotADirectoryError as exc:
        raise conflict_error(path, "a directory on its way is a file") from exc
    except OSError as exc:
        raise _storage_error(operation, path, exc) from exc


def _storage_error(operation: str, path: str, exc: OSError) -> StorageError:
    return StorageError(
        f"could not {operation} knowledge file {path!r}: {exc.strerror or exc}; check the disk and the "
        "store root's permissions",
        reason=f"{operation}_failed",
    )
