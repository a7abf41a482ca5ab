"""``KnowledgeStore``: files that agents keep (notes, artifacts, logs), by virtual path.

Paths are absolute, POSIX-style and canonical: ``/agents/a1/notes.md``. Every
implementation checks them with :func:`check_path`, so a path one store refuses
every store refuses, with :class:`~hubbub.errors.UsageError` naming it.

Semantics shared by every store (the contract suite in
``tests/storage/test_knowledge.py`` pins them):

- Directories are implicit: writing ``/a/b/c.md`` makes ``/a/`` and ``/a/b/``
  exist, and they vanish with their last file. A path is either a file or a
  directory, never both: writing ``/a`` while ``/a/b`` exists (or the other way
  round) raises ``UsageError``.
- Missing is not an error: ``read``/``read_bytes``/``read_range`` return None,
  ``delete`` returns False, ``exists`` returns False, ``list`` returns ``[]``.
- ``str`` data is stored as UTF-8; ``read`` decodes UTF-8 and ``read_bytes``
  returns the bytes as written.

``MemoryKnowledgeStore`` lives here; ``DiskKnowledgeStore`` in
:mod:`hubbub.storage.knowledge_disk`.
"""

from __future__ import annotations

import abc
import builtins

from ..errors import UsageError

__all__ = ["MAX_SEGMENT_BYTES", "RESERVED_PREFIX", "KnowledgeStore", "MemoryKnowledgeStore", "check_path"]

MAX_SEGMENT_BYTES = 255
"""Longest path segment, in UTF-8 bytes (NAME_MAX on common filesystems)."""

RESERVED_PREFIX = ".hubbub-tmp."
"""Segments starting with this are refused: ``DiskKnowledgeStore`` names its temp files so."""


def check_path(path: str, *, directory: bool = False) -> tuple[str, ...]:
    """The segments of a valid virtual path; raise ``UsageError`` naming ``path`` otherwise.

    A file path is ``/`` followed by one or more non-empty segments separated by
    single ``/``, without a trailing ``/``. With ``directory=True`` the path names a
    directory: ``/`` (no segments) is allowed and so is one trailing ``/``. Refused
    everywhere: relative paths, ``.`` and ``..`` segments, empty segments (``//``),
    backslashes, NUL and other control characters, text that is not valid UTF-8,
    segments over :data:`MAX_SEGMENT_BYTES` bytes, and segments starting with
    :data:`RESERVED_PREFIX`.
    """
    if not isinstance(path, str):
        raise UsageError(f"a knowledge path must be a str, not {type(path).__name__} ({path!r})")
    if not path.startswith("/"):
        raise _bad(path, "it must be absolute, starting with '/'")
    body = path[1:]
    if directory and body.endswith("/"):
        body = body[:-1]
    if not body:
        if directory:
            return ()
        raise _bad(path, "it names a directory, not a file")
    segments = tuple(body.split("/"))
    for segment in segments:
        _check_segment(path, segment)
    return segments


def _check_segment(path: str, segment: str) -> None:
    if segment == "":
        raise _bad(path, "it has an empty segment ('//' or a trailing '/')")
    if segment in (".", ".."):
        raise _bad(path, f"'{segment}' segments are not allowed")
    if "\\" in segment:
        raise _bad(path, "backslashes are not allowed")
    if any(ch < " " or ch == "\x7f" for ch in segment):
        raise _bad(path, "control characters (NUL included) are not allowed")
    try:
        size = len(segment.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _bad(path, "it is not valid UTF-8 text") from exc
    if size > MAX_SEGMENT_BYTES:
        raise _bad(path, f"a segment is {size} bytes long; the limit is {MAX_SEGMENT_BYTES}")
    if segment.startswith(RESERVED_PREFIX):
        raise _bad(path, f"segments starting with {RESERVED_PREFIX!r} are reserved")


def _bad(path: str, why: str) -> UsageError:
    return UsageError(f"invalid knowledge path {path!r}: {why}", reason="bad_path")


def encode_data(path: str, data: str | bytes) -> bytes:
    """``data`` as the bytes to store: ``str`` as UTF-8, bytes-like as is."""
    if isinstance(data, str):
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(f"data for {path!r} is not valid UTF-8 text: {exc}", reason="bad_data") from exc
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise UsageError(f"data for {path!r} must be str or bytes, not {type(data).__name__}", reason="bad_data")


def check_range(path: str, start: int, end: int | None) -> None:
    """Refuse a negative ``start`` or an ``end`` before ``start``."""
    if start < 0 or (end is not None and end < start):
        raise UsageError(f"bad byte range [{start}, {end}) for {path!r}: need 0 <= start <= end")


class KnowledgeStore(abc.ABC):
    """Files by virtual path, with append. See the module docstring for the shared semantics."""

    async def read(self, path: str) -> str | None:
        """The file at ``path`` decoded as UTF-8, or None when there is no file there.

        Raises ``UsageError`` when the file holds bytes that are not UTF-8 text: read
        those with :meth:`read_bytes`.
        """
        data = await self.read_bytes(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{path!r} holds bytes that are not UTF-8 text ({exc.reason} at byte {exc.start}); "
                "read it with read_bytes()",
                reason="not_text",
            ) from exc

    @abc.abstractmethod
    async def read_bytes(self, path: str) -> bytes | None:
        """The file at ``path`` as written, or None when there is no file there."""

    @abc.abstractmethod
    async def read_range(self, path: str, start: int, end: int | None = None) -> bytes | None:
        """Bytes ``[start, end)`` of the file (``end=None``: to its end), clipped to its size.

        None when there is no file at ``path``. Pair with the offsets :meth:`append`
        returns to read a log incrementally.
        """

    @abc.abstractmethod
    async def write(self, path: str, data: str | bytes) -> None:
        """Replace the file at ``path`` (creating it and its directories) with ``data``."""

    @abc.abstractmethod
    async def append(self, path: str, data: str | bytes) -> int:
        """Add ``data`` at the end of the file (creating it); return the offset it starts at.

        Appends to one path from many tasks never interleave: each lands whole, one
        after another.
        """

    @abc.abstractmethod
    async def delete(self, path: str) -> bool:
        """Remove the file at ``path``; True if there was one. Directories are not files:
        deleting one returns False and removes nothing."""

    @abc.abstractmethod
    async def exists(self, path: str) -> bool:
        """True when a file (not a directory) is stored at ``path``."""

    @abc.abstractmethod
    async def list(self, prefix: str = "/") -> builtins.list[str]:
        """Every file path under the directory ``prefix``, at any depth, sorted.

        ``list("/agents")`` and ``list("/agents/")`` both return paths like
        ``/agents/a1/notes.md``; a prefix that is not a directory gives ``[]``.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release what the store holds. Stores in this module hold nothing to release."""


class MemoryKnowledgeStore(KnowledgeStore):
    """Every file in a dict of ``bytearray``; lost when the process ends.

    Appends extend the file in place (amortized O(1) per byte, no copying of what is
    already there). Every method completes without yielding to the loop, so each
    is atomic with respect to other tasks.
    """

    def __init__(self) -> None:
        self._files: dict[str, bytearray] = {}
        self._dirs: dict[str, int] = {}
        """Directory path (with trailing ``/``) -> number of files under it."""

    async def read_bytes(self, path: str) -> bytes | None:
        check_path(path)
        data = self._files.get(path)
        return None if data is None else bytes(data)

    async def read_range(self, path: str, start: int, end: int | None = None) -> bytes | None:
        check_path(path)
        check_range(path, start, end)
        data = self._files.get(path)
        return None if data is None else bytes(data[start:end])

    async def write(self, path: str, data: str | bytes) -> None:
        segments = check_path(path)
        payload = encode_data(path, data)
        self._file_for(path, segments)[:] = payload

    async def append(self, path: str, data: str | bytes) -> int:
        segments = check_path(path)
        payload = encode_data(path, data)
        file = self._file_for(path, segments)
        offset = len(file)
        file += payload
        return offset

    async def delete(self, path: str) -> bool:
        segments = check_path(path)
        if self._files.pop(path, None) is None:
            return False
        for parent in _parents(segments):
            left = self._dirs[parent] - 1
            if left:
                self._dirs[parent] = left
            else:
                del self._dirs[parent]
        return True

    async def exists(self, path: str) -> bool:
        check_path(path)
        return path in self._files

    async def list(self, prefix: str = "/") -> builtins.list[str]:
        segments = check_path(prefix, directory=True)
        directory = "/" + "".join(f"{s}/" for s in segments)
        if directory != "/" and directory not in self._dirs:
            return []
        return sorted(p for p in self._files if p.startswith(directory))

    def _file_for(self, path: str, segments: tuple[str, ...]) -> bytearray:
        """The file at ``path``, created (with its directories) if missing."""
        file = self._files.get(path)
        if file is not None:
            return file
        if path + "/" in self._dirs:
            raise conflict_error(path, "it is a directory")
        parents = _parents(segments)
        for parent in parents:
            if parent[:-1] in self._files:
                raise conflict_error(path, f"{parent[:-1]!r} is a file")
        for parent in parents:
            self._dirs[parent] = self._dirs.get(parent, 0) + 1
        file = self._files[path] = bytearray()
        return file


def _parents(segments: tuple[str, ...]) -> builtins.list[str]:
    """``("a", "b", "c.md")`` -> ``["/a/", "/a/b/"]``."""
    parents: builtins.list[str] = []
    current = "/"
    for segment in segments[:-1]:
        current += segment + "/"
        parents.append(current)
    return parents


def conflict_error(path: str, why: str) -> UsageError:
    """A file and a directory would share a path."""
    return UsageError(
        f"cannot store a file at {path!r}: {why}; a path is a file or a directory, never both",
        reason="path_conflict",
    )
