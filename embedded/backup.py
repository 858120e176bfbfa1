"""Back up the data directory's database while the service serves, and put a backup back.

    python -m embedded.backup --to PATH         # a consistent copy of seacat.db, checked, 0600
    python -m embedded.backup --restore PATH    # with the service stopped: PATH becomes seacat.db

The data directory is ``SEACAT_DATA_DIR`` (default ``.seacat-local/``), or ``--data-dir``.

``--to`` copies the database with SQLite's online backup (``sqlite3.Connection.backup``) in one
step: one read transaction, so the copy is the database as of one commit, while the service's
writers go on (WAL: a reader never blocks a writer). The copy is written owner-only beside its
destination, switched out of WAL mode (one self-contained file), checked with ``PRAGMA
integrity_check``, synced, then renamed into place: a destination is either the previous backup or
the new one, never half of one. A directory as destination gets ``seacat-<UTC time>.db`` in it.

The copy holds the tenants' CA keys sealed under the key-encryption key (KEK), never the KEK: keep
the KEK (``SEACAT_LOCAL_KEK``, or the data directory's file ``kek``) out of the same backups, or a
backup is the CA keys in the clear. The summary names the id of the KEK the copy needs.

``--restore`` refuses while a service uses the directory (its lock), checks the backup (this
service's file, a schema this release knows, ``integrity_check``, and that the KEK at hand opens
its secrets), keeps the current database as ``seacat.db-before-restore`` and puts the backup in
its place, with no stale ``-wal`` file of the previous database left beside it. The next start
migrates an older schema as usual.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from scripts import datadir
from scripts.datadir import EXIT_NOT_STARTED, plural, shown

BEFORE_RESTORE = "-before-restore"  # suffix of the database a restore replaced (make reset deletes it)
RESTORING = "-restoring"  # the backup being checked in the data directory before it takes the database's place
BUSY_SECONDS = 10.0


class BackupError(RuntimeError):
    """The backup or the restore cannot be done; the message says why, nothing was changed."""


def _database_name() -> str:
    from chalicelib.context import LOCAL_DATABASE

    return LOCAL_DATABASE


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _identify(conn: sqlite3.Connection, what: str) -> int:
    """The schema version of a SeaCat PKI database (BackupError for another file)."""
    from chalicelib.store.sqlite.schema import APPLICATION_ID, VERSION

    try:
        application = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a SQLite database ({exc})") from None
    if application != APPLICATION_ID:
        raise BackupError(f"{what} is not a SeaCat PKI database")
    if version > VERSION:
        raise BackupError(
            f"{what} has schema version {version}, this release knows versions up to {VERSION}: "
            "it was written by a newer release"
        )
    return version


def _check(conn: sqlite3.Connection, what: str) -> None:
    problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {'; '.join(problems[:5])}")


def kek_ids(database: Path) -> list[str]:
    """The ids of the KEKs the database's secrets are sealed with (none: it holds no secret)."""
    conn = sqlite3.connect(database, timeout=BUSY_SECONDS)
    try:
        return [str(r[0]) for r in conn.execute("SELECT DISTINCT kek_id FROM local_secrets ORDER BY 1")]
    except sqlite3.OperationalError:  # no table: no secret
        return []
    finally:
        conn.close()


def copy_database(source: Path, target: Path) -> None:
    """``source`` (a live database, WAL included) copied to the new file ``target`` in one step of the
    online backup: one snapshot, writers not held up. The copy is in rollback-journal mode (one file),
    owner-only, checked and synced. BackupError (and no ``target``) if anything fails."""
    _create_private(target)
    try:
        src = sqlite3.connect(source, timeout=BUSY_SECONDS)
        try:
            _identify(src, shown(source))
            dst = sqlite3.connect(target, isolation_level=None)
            try:
                src.backup(dst)  # pages=-1: every page in one step, under one read transaction
                dst.execute("PRAGMA journal_mode = DELETE")  # a single file, whatever the source's mode
                _check(dst, f"the copy of {shown(source)}")
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(target)
    except BaseException:
        _unlink(target)
        raise


def summary(database: Path) -> str:
    from chalicelib.keystore.local import sealed_count
    from embedded.run import database_counts

    counts = database_counts(database)
    parts = [plural(counts.get(noun, 0), noun) for noun in ("tenant", "CA certificate", "client certificate")]
    parts.append(plural(sealed_count(database), "sealed secret"))
    return ", ".join(parts)


def backup(data: Path, destination: Path) -> tuple[Path, str]:
    """Back the data directory's database up to ``destination`` (a file, or a directory to put one in);
    returns the backup's path and what to tell the operator."""
    database = data / _database_name()
    if not database.is_file():
        raise BackupError(f"{shown(data)} holds no database ({database.name}): nothing to back up")
    if destination.is_dir():
        destination = destination / f"seacat-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.db"
    parent = destination.parent.resolve()
    if parent == data.resolve():
        raise BackupError(
            f"not writing a backup into the data directory {shown(data)}: it would sit beside the database "
            "and the key-encryption key, and go where they go; choose another directory"
        )
    if not parent.is_dir():
        raise BackupError(f"{shown(destination.parent)} is not a directory")
    started = time.monotonic()
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    copy_database(database, tmp)
    os.replace(tmp, destination)
    _fsync(parent)
    ids = kek_ids(destination)
    kek = (
        f"its sealed secrets open only with the key-encryption key {', '.join(ids)} (SEACAT_LOCAL_KEK or "
        f"{shown(data / 'kek')}), which is not in the backup: keep that apart from it"
        if ids
        else "it holds no sealed secret"
    )
    size = destination.stat().st_size
    message = (
        f"seacat: backed up {shown(database)} to {shown(destination)} in {time.monotonic() - started:.1f} s "
        f"({size / 1e6:.1f} MB: {summary(destination)}); integrity check ok; {kek}"
    )
    return destination, message


def restore(data: Path, source: Path) -> str:
    """Make ``source`` (a backup) the data directory's database; the service must be stopped."""
    from chalicelib.cache import Cache
    from chalicelib.keystore.local import LocalKeyStore, LocalKeyStoreError, load_kek, sealed_count
    from chalicelib.settings import get_settings

    if not source.is_file():
        raise BackupError(f"{shown(source)} is not a file")
    os.umask(0o077)
    datadir.ensure_private(data)
    try:
        lock_fd = datadir.lock(data)  # and held: no service starts on the directory meanwhile
    except datadir.InUse:
        raise BackupError(f"a service is using {shown(data)}: stop it first (systemctl stop, or Ctrl-C)") from None
    database = data / _database_name()
    staged = data / f"{database.name}{RESTORING}"  # one restore at a time: it holds the lock
    try:
        for suffix in ("", "-wal", "-shm", "-journal"):  # what an interrupted restore left
            _unlink(staged.with_name(staged.name + suffix))
        copy_database(source, staged)
        try:
            conn = sqlite3.connect(staged)
            try:
                version = _identify(conn, shown(source))
            finally:
                conn.close()
            if sealed_count(staged):
                ids = kek_ids(staged)
                try:
                    kek = load_kek(get_settings().local_kek, data)
                    checking = LocalKeyStore(staged, kek.key, Cache("keys", 1), Cache("secrets", 1))
                    try:
                        checking.check()
                    finally:
                        checking.close()
                except LocalKeyStoreError as exc:
                    raise BackupError(
                        f"{exc}. The backup's secrets are sealed with the key-encryption key {', '.join(ids)}: give "
                        f"that one (SEACAT_LOCAL_KEK, or the file {shown(data / 'kek')})"
                    ) from None
            kept = ""
            if database.exists():
                # Moved aside whole, with its WAL (SQLite finds ``<name>-wal`` beside ``<name>``): it may be
                # the damaged database the backup replaces, which a copy would refuse to read.
                aside = database.with_name(database.name + BEFORE_RESTORE)
                for suffix in ("", "-wal", "-shm", "-journal"):
                    _unlink(aside.with_name(aside.name + suffix))
                for suffix in ("-wal", "-journal"):
                    if database.with_name(database.name + suffix).exists():
                        os.replace(database.with_name(database.name + suffix), aside.with_name(aside.name + suffix))
                os.replace(database, aside)
                kept = f"; the database it replaced is kept as {shown(aside)}"
            _unlink(database.with_name(database.name + "-shm"))
            os.replace(staged, database)
            datadir.fsync_dir(data)
        finally:
            _unlink(staged)
    finally:
        os.close(lock_fd)
    return (
        f"seacat: restored {shown(source)} (schema version {version}: {summary(database)}) into "
        f"{shown(database)}{kept}. Start the service."
    )


def main(argv: list[str] | None = None) -> int:
    from embedded.run import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(prog="seacat-backup", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, help="the service's data directory (default: SEACAT_DATA_DIR, else .seacat-local)"
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--to", type=Path, metavar="PATH", help="write a backup there (a file, or a directory)")
    action.add_argument("--restore", type=Path, metavar="PATH", help="replace the database with this backup")
    args = parser.parse_args(argv)
    try:
        data = datadir.chosen(args.data_dir, DEFAULT_DATA_DIR)
        if args.to is not None:
            _, message = backup(data, args.to.expanduser().absolute())
        else:
            message = restore(data, args.restore.expanduser().absolute())
    except (BackupError, datadir.StateError, sqlite3.Error, OSError) as exc:
        print(
            f"seacat: {'backup' if args.to is not None else 'restore'} failed: {exc}. Nothing was changed.",
            file=sys.stderr,
        )
        return EXIT_NOT_STARTED if isinstance(exc, BackupError | datadir.StateError) else 1
    print(message, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
