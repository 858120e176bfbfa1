"""The SQLite database the ports share: connections, settings, transactions, error translation.

One connection per thread (``threading.local``), opened on the thread's first call with the same
settings; statements are prepared once per connection (the connection's statement cache, keyed by
the constant SQL texts of the port modules). Every write is ``BEGIN IMMEDIATE`` ... ``COMMIT``: it
takes the database's one write lock before reading what it checks, so writers of all threads and
processes run one after another, each seeing the last one's commit, and no write transaction has to
upgrade a read lock (the upgrade that fails at once with SQLITE_BUSY, whatever the busy timeout).
A writer waits for the lock up to the busy timeout; past it the call raises ``Unavailable`` (503,
Retry-After), never a 500.

Writers queue before SQLite's lock too: on a lock of the process (threads) and on ``flock`` of a
file beside the database, ``<database>-lock`` (processes). SQLite's own wait for a busy database
sleeps 1, 2, 5, ... up to 100 ms between tries, so a transaction that missed the lock by a
millisecond waits tens of them, and an unlucky one seconds. Measured on 2 shared cores, enrolment
transactions with 2 ms between them: 8 threads, 280-350 a second, p99 380-440 ms, max 1.4-2.2 s
through SQLite's wait alone; 540-720 a second, p99 45-65 ms, max 140-180 ms queued. 4 processes:
290-340 a second, p99 110-140 ms, max 0.4-1 s; queued 410-460, p99 50-60 ms, max 0.1-0.4 s.
SQLite's busy wait remains for writers that do not queue (another program, the sqlite3 shell).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.errors import Conflict, PkiError, Unavailable
from chalicelib.store import keys
from chalicelib.store.sqlite import schema

try:
    import fcntl
except ImportError:  # not POSIX: writers of several processes wait in SQLite's busy handler only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("seacat.store")

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another's transaction before answering 503
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_KEY_IN_USE = {sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE}
MIN_SQLITE = (3, 24, 0)  # upsert (INSERT ... ON CONFLICT DO UPDATE)
MEMO_SIZE = 4096  # records a thread's read memo holds at most (read_memo)
_LOCK_POLL = (0.0002, 0.002)  # seconds between two tries of a taken flock: the first, the longest

# Forks seen by this process: a connection must never cross a fork (SQLite's own rule: the child
# would share the parent's file locks and its view of them), so a Database opened before one
# refuses to serve the child.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class StoreClosed(RuntimeError):
    """The backend was closed (or opened before this process forked): a programming error."""


class _Slot:
    """A thread's connection; the Database keeps weak references to close them."""

    __slots__ = ("conn", "thread", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.thread = threading.get_ident()


class Database:
    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: {'.'.join(map(str, MIN_SQLITE))} needed")
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.next_purge = 0.0  # time.monotonic() from which the next write purges expired audit events
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        self._forks = _forks
        self._writers = threading.Lock()  # this process's writers, one at a time
        self._commits = 0  # write transactions this process committed (read_memo's stamp)
        _create_private(self.path)
        self._lock_fd = -1 if fcntl is None else os.open(f"{self.path}-lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            conn = self._open()
            try:
                schema.prepare(conn, self.path)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._close_lock_file()
            raise
        self._adopt(conn)

    # -- connections -----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, each BEGIN and COMMIT is ours.
        # A connection is used by the thread that opened it only (self._local); check_same_thread is
        # off so that close(every_thread=True) can close them all when a server worker leaves.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, cached_statements=256, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            # A certificate is returned only once it is stored, so a commit must survive a power cut
            # too. In WAL mode NORMAL syncs the log only at checkpoints: the last transactions
            # before a power loss (not a process crash) can roll back after we acknowledged them.
            # FULL syncs the log at every commit.
            conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _adopt(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        slot = _Slot(conn)
        with self._lock:
            self._slots.add(slot)
        self._local.slot = slot
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on its first call."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is not None and not self._closed and self._forks == _forks:
            return slot.conn
        if self._forks != _forks:
            raise StoreClosed("this SQLite backend was opened before the process forked: open one in the child")
        if self._closed:
            if slot is not None:
                self._local.slot = None
                slot.conn.close()
            raise StoreClosed("the SQLite backend is closed")
        return self._adopt(self._open())

    def close(self, *, every_thread: bool = False) -> None:
        """Close the database: this thread's connection now, every other thread's on its next call
        (or when the thread ends); ``every_thread``: all of them now, for a process that is leaving
        and whose threads serve no more (the last connection to close checkpoints the log and
        removes it). Calls after this raise StoreClosed."""
        self._closed = True
        if self._forks != _forks:  # a child's copy: what it inherited is the parent's, never closed here
            return
        me = threading.get_ident()
        with self._lock:
            mine = [s for s in self._slots if every_thread or s.thread == me]
        for slot in mine:
            slot.conn.close()
        self._local.slot = None
        # Not while a writer of this process holds the file lock (it would lose it half-way).
        acquired = self._writers.acquire(timeout=self.busy_timeout)
        try:
            self._close_lock_file()
        finally:
            if acquired:
                self._writers.release()

    def _close_lock_file(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, conflict: str = "the item was changed concurrently") -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block ends normally, rolled back on any error.
        A constraint violation (a key that exists) is ``Conflict(conflict)``."""
        conn = self.connection()
        with self._queued(), translated(conflict):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                self._commits += 1  # under the writers' lock; a rollback counts too (harmless)

    @contextlib.contextmanager
    def _queued(self) -> Iterator[None]:
        """Hold the writers' locks (this process's, then the file's) for a transaction; waiting
        longer than the busy timeout for them is Unavailable."""
        deadline = time.monotonic() + self.busy_timeout
        if not self._writers.acquire(timeout=self.busy_timeout):
            raise _busy("the lock of this process's writers")
        try:
            fd = self._lock_fd
            if fd >= 0:
                _flock(fd, deadline)
            try:
                yield
            finally:
                if fd >= 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._writers.release()

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:  # SQLite rolled back already (some I/O errors do)
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # A connection that cannot roll back is not reused: closing it rolls back.
            log.warning("SQLite rollback failed; the connection is closed", exc_info=True)
            self._local.slot = None
            conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reads: one statement is one consistent snapshot."""
        conn = self.connection()
        with translated():
            yield conn

    def read_memo(self) -> dict[Any, Any]:
        """This thread's memo of records read, valid while the database is as it was when they were
        read: emptied once anything was committed since, by any connection of any process (SQLite's
        ``PRAGMA data_version`` moves on another connection's commit, this process's count of
        commits on its own). A hot read (the tenant and the identity that nginx_authenticate reads
        at every request) then costs one pragma instead of a query and the record's parsing,
        without a TTL: a revocation committed by another worker is seen at the next request."""
        conn = self.connection()
        with translated():
            stamp = (conn.execute("PRAGMA data_version").fetchone()[0], self._commits)
        local = self._local
        memo: dict[Any, Any] | None = getattr(local, "memo", None)
        if memo is None or local.stamp != stamp or len(memo) >= MEMO_SIZE:
            memo = local.memo = {}
            local.stamp = stamp
        return memo

    def purge_due(self) -> bool:
        return time.monotonic() >= self.next_purge


def _flock(fd: int, deadline: float) -> None:
    """Take the writers' file lock, trying again (every 0.2 ms, then 0.4, ... 2 ms) until the
    deadline: ``flock`` cannot wait with a timeout, and a writer stuck in its transaction (a
    stopped process) must cost the others a 503, not a hung request."""
    pause = _LOCK_POLL[0]
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                log.error("the SQLite writers' lock failed: %s", exc)
                raise Unavailable("the database is not available") from None
        if time.monotonic() + pause > deadline:
            raise _busy("the writers' lock file")
        time.sleep(pause)
        pause = min(pause * 2, _LOCK_POLL[1])


def _busy(what: str) -> Unavailable:
    log.warning("SQLite busy past the timeout: waiting for %s", what)
    return Unavailable("the database is busy, retry later", retry_after=1)


@contextlib.contextmanager
def translated(conflict: str = "the item was changed concurrently") -> Iterator[None]:
    """SQLite's errors as domain errors: a key in use to 409, a lock held past the busy timeout (or
    any other failure of the database, a full disk included) to a retryable 503. A misuse of the
    API (ProgrammingError, a closed connection, another constraint) stays what it is: a bug, a 500."""
    try:
        yield
    except (PkiError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.IntegrityError as exc:
        if getattr(exc, "sqlite_errorcode", None) in _KEY_IN_USE:
            raise Conflict(conflict) from None
        raise  # NOT NULL, a foreign key: a bug of ours, not a race
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_ERROR) & 0xFF
        if code in _BUSY:
            raise _busy(str(exc)) from None
        log.error("SQLite failed: %s (%s)", exc, getattr(exc, "sqlite_errorname", "?"))
        raise Unavailable("the database is not available") from None


def _create_private(path: Path) -> None:
    """Create the database file owner-only (SQLite gives its -wal and -shm files the same mode)."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


# -- values --------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def text(at: datetime) -> str:
    """A time as stored: ISO-8601 UTC to the microsecond (fixed width, so text order is time order)."""
    return keys.iso(at)


def text_or_none(at: datetime | None) -> str | None:
    return keys.iso(at) if at is not None else None


def time_of(value: str) -> datetime:
    return datetime.fromisoformat(value)


def time_or_none(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def hex_serial(serial: int) -> str:
    return f"{serial:x}"
