"""Checkpoints off the commit path: a thread with its own connection copies the WAL into the file.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold:
that commit, and every post waiting on it, pays for copying ~1,000 pages into the
database file and (at durability "full" or "normal") fsyncing it, several
milliseconds. The writer's connection has it turned off (``wal_autocheckpoint =
0``); instead the writer tells this thread about its commits and, every
:data:`EVERY_COMMITS` commits or :data:`EVERY_SECONDS` after one, the thread runs
a ``PASSIVE`` checkpoint on its own connection: it copies what it can without
ever blocking the writer or a reader. Once everything is copied, the writer's
next transaction starts the WAL over from its beginning, as before.

The WAL starts over only when a transaction begins with all of it copied. Under
writes that never pause, the thread's copy never catches up with the end of the
WAL (new commits land while it copies), so the WAL would never start over and
would grow without bound. Once it holds :data:`HELP_FRAMES` frames the
writer tops the copy up itself between two transactions (:meth:`Checkpointer.help`):
only the frames the thread has not copied yet, and then the next transaction
starts the WAL over.

Nothing about durability changes: a commit is as durable as its ``synchronous``
setting says before it returns, and a checkpoint only moves committed pages.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["EVERY_COMMITS", "EVERY_SECONDS", "HELP_FRAMES", "Checkpointer"]

EVERY_COMMITS = 32
"""Commits between two checkpoints under load."""
EVERY_SECONDS = 0.05
"""The longest a commit waits to be checkpointed when fewer follow it."""
HELP_FRAMES = 4096
"""WAL frames (pages, 16 MiB at the default page size) past which the writer helps (see above)."""

log = logging.getLogger("hubbub.storage")


class Checkpointer:
    """The checkpoint thread of one database; :attr:`runs` counts checkpoints so far."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.runs = 0
        self.behind = False
        """The WAL has grown past :data:`HELP_FRAMES` with frames still to copy: the writer should help."""
        self._conn = conn
        self._path = path
        self._commits = 0  # written by the writer thread only
        self._nudge = threading.Event()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=f"hubbub-sqlite-checkpoint:{path}", daemon=True)
        self.thread.start()

    def committed(self) -> None:
        """One more commit (called by the writer thread after each)."""
        self._commits += 1
        if self._commits % EVERY_COMMITS == 0:
            self._nudge.set()

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first) and close its connection."""
        self._stopping = True
        self._nudge.set()
        self.thread.join()
        self._conn.close()

    def _run(self) -> None:
        done = 0
        while not self._stopping:
            self._nudge.wait(EVERY_SECONDS)
            self._nudge.clear()
            commits = self._commits
            if commits == done or self._stopping:
                continue
            done = commits
            try:
                _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # the WAL only grows until a later one succeeds
                log.warning("checkpointing hubbub database %s failed: %s", self._path, exc)
            else:
                self.runs += 1
                if frames >= HELP_FRAMES:  # it has not started over for that long
                    self.behind = True

    def help(self, conn: sqlite3.Connection) -> None:
        """On the writer's connection, between two of its transactions: copy what is left, so
        its next transaction starts the WAL over. Busy (the thread is copying): next time."""
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("checkpointing hubbub database %s failed: %s", self._path, exc)
            return
        if not busy and copied >= frames:
            self.behind = False
