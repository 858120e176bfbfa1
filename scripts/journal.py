"""The local run's data directory and its write-ahead journal of emulator writes.

The emulator (moto) keeps its state in memory; what makes it durable is this journal: every request
that changes state is appended here, as one JSON line in moto's own recorder format (``method``,
``url``, ``headers``, ``body``, ``body_encoded``) plus ``seq`` (its position) and ``status`` (what
the emulator answered), and flushed to disk (fsync) before the emulator's answer leaves. A start
replays the lines, in order, into a fresh emulator.

Crash safety rests on three rules: the file is only ever appended to, one record is one ``write``
of one whole line, and a record is acknowledged only once fsync returned. A kill (or power loss)
can therefore only leave an incomplete *last* line; the reader drops it (and truncates it away
before anything new is appended). Anything else that does not read back is reported, never
guessed at.

Layout of the directory (0700; files 0600, they hold tenant CA private keys in the clear):
``journal.jsonl`` the records, ``meta.json`` the format and the moto version that wrote them
(written once, atomically), ``lock`` held (flock) by the running ``make run``, and
``operator-token`` the operator token make run generated (when SEACAT_ADMIN_TOKEN sets none); the
directory itself is scripts/datadir.py's, shared with the embedded run.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.datadir import LOCK, OPERATOR_TOKEN, InUse, StateError, fsync_dir, write_private

__all__ = ["InUse", "StateError"]  # raised here, defined with the directory they are about

FORMAT = 1
JOURNAL = "journal.jsonl"
META = "meta.json"
OUR_FILES = frozenset({JOURNAL, META, LOCK, OPERATOR_TOKEN, META + ".tmp", OPERATOR_TOKEN + ".tmp"})

_fdatasync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True)
class Record:
    seq: int
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int

    def to_line(self) -> bytes:
        try:
            body, encoded = self.body.decode("utf-8"), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(self.body).decode("ascii"), True
        entry = {
            "seq": self.seq,
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": body,
            "body_encoded": encoded,
            "status": self.status,
        }
        # json.dumps escapes every newline, so the line's only b"\n" is its end.
        return json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Record:
        entry = json.loads(line)
        body = entry.get("body") or ""
        raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode("utf-8")
        headers = entry["headers"]
        if not isinstance(headers, dict):
            raise ValueError("headers is not an object")
        return cls(int(entry["seq"]), str(entry["method"]), str(entry["url"]), headers, raw, int(entry["status"]))


@dataclass(frozen=True)
class Loaded:
    records: list[Record]
    valid_bytes: int  # the length of the file's intact prefix
    torn_bytes: int  # bytes of an incomplete last record after it (0: none)


def read_journal(path: Path) -> Loaded:
    """Every intact record; an incomplete last line is reported as torn, anything else raises."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Loaded([], 0, 0)
    records: list[Record] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:  # no newline: the write of the last record did not complete
            return Loaded(records, offset, len(data) - offset)
        line = data[offset:end]
        try:
            record = Record.from_line(line)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{path.name}: record {len(records) + 1} (byte {offset}) does not read back ({exc}); "
                "it is not an interrupted last write, so the file was changed or damaged"
            ) from None
        if record.seq != len(records) + 1:
            raise StateError(f"{path.name}: record {len(records) + 1} has sequence number {record.seq}")
        records.append(record)
        offset = end + 1
    return Loaded(records, offset, 0)


class Journal:
    """Append-only, fsync per record; thread-safe (the emulator also serialises its callers)."""

    def __init__(self, path: Path, next_seq: int) -> None:
        self.path = path
        self.next_seq = next_seq
        self._lock = threading.Lock()
        created = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:  # the file's name must survive a crash too, not only its records
            fsync_dir(path.parent)

    def append(self, method: str, url: str, headers: dict[str, str], body: bytes, status: int) -> int:
        with self._lock:
            record = Record(self.next_seq, method, url, headers, body, status)
            line = record.to_line()
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.EIO, f"short write to {self.path.name} ({written} of {len(line)} bytes)")
            _fdatasync(self._fd)
            self.next_seq += 1
            return record.seq

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


# --- the directory's other files ------------------------------------------------------------------


def read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((path / META).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise StateError(f"{META} does not read back ({exc})") from None
    if not isinstance(meta, dict):
        raise StateError(f"{META} is not a JSON object")
    if meta.get("format") != FORMAT:
        raise StateError(f"{META}: format {meta.get('format')!r}, this version reads format {FORMAT}")
    return meta


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    write_private(path / META, json.dumps(meta, indent=1).encode() + b"\n")


def drop_torn_tail(path: Path, valid_bytes: int) -> None:
    """Cut an incomplete last record off, so the next record does not start inside it."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, valid_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)
