"""embedded/backup.py: an online backup of a database being written to, and a restore."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.cache import Cache
from chalicelib.keystore.local import KEK_FILE, LocalKeyStore, kek_id, load_kek
from chalicelib.store.sqlite import SqliteBackend
from embedded import backup
from scripts import datadir
from tests.conftest import ROOT
from tests.contract.conftest import issue

TENANT = "bk-tenant"
WAIT = 120  # seconds: the bound on the backup command


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory as make run leaves it: the database, a sealed CA key, the KEK file."""
    from chalicelib.ca import keys
    from chalicelib.settings import get_settings

    monkeypatch.delenv("SEACAT_LOCAL_KEK", raising=False)
    get_settings.cache_clear()
    directory = tmp_path / "data"
    datadir.ensure_private(directory)
    kek = load_kek(None, directory, create=True)
    store = LocalKeyStore(directory / "seacat.db", kek.key, Cache("k", 1), Cache("s", 1))
    store.create(TENANT, keys.generate_ca_key())
    store.close()
    with SqliteBackend(directory / "seacat.db") as b:
        for n in range(20):
            issue(b.certificates, TENANT, f"id-{n}")
    return directory


def cert_ids(database: Path) -> set[str]:
    conn = sqlite3.connect(database)
    try:
        return {str(r[0]) for r in conn.execute("SELECT cert_id FROM certificates")}
    finally:
        conn.close()


@pytest.fixture
def writer(data: Path) -> Iterator[threading.Event]:
    """Certificates issued one after another into the data directory until the test ends."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with SqliteBackend(data / "seacat.db") as b:
                n = 0
                while not stop.is_set():
                    issue(b.certificates, TENANT, f"w-{n}")
                    n += 1
        except BaseException as exc:  # reported by the fixture
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield stop
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and not failures, failures


def test_a_backup_during_writes_is_whole_and_holds_every_earlier_commit(
    data: Path, writer: threading.Event, tmp_path: Path
) -> None:
    target = tmp_path / "backups" / "seacat.db"
    target.parent.mkdir()
    committed = cert_ids(data / "seacat.db")  # everything committed before the backup starts
    env = {**os.environ, "SEACAT_DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "embedded.backup", "--to", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    writer.set()
    live = cert_ids(data / "seacat.db")
    copied = cert_ids(target)
    assert committed <= copied <= live
    assert len(live) > len(committed)  # the writer went on around the backup
    assert target.stat().st_mode & 0o777 == 0o600
    assert not list(target.parent.glob("*.tmp")) and not (target.parent / "seacat.db-wal").exists()
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
        assert conn.execute("SELECT count(*) FROM local_secrets").fetchone()[0] == 1
    finally:
        conn.close()
    kek = load_kek(None, data)
    assert "integrity check ok" in done.stdout and f"key-encryption key {kek.id}" in done.stdout
    assert kek_id(kek.key) in done.stdout and (data / KEK_FILE).read_text().strip() not in done.stdout
    # the copy opens as a store, with every certificate
    with SqliteBackend(target) as b:
        assert b.certificates.get_identity(TENANT, "id-19") is not None


def test_a_directory_as_destination_gets_a_dated_file_and_the_data_directory_is_refused(
    data: Path, tmp_path: Path
) -> None:
    made, message = backup.backup(data, tmp_path)
    assert made.parent == tmp_path and made.name.startswith("seacat-") and made.suffix == ".db"
    assert "20 client certificates" in message and "1 sealed secret" in message
    with pytest.raises(backup.BackupError, match="into the data directory"):
        backup.backup(data, data / "copy.db")
    with pytest.raises(backup.BackupError, match="no database"):
        backup.backup(tmp_path / "empty", tmp_path / "x.db")


def test_restore_replaces_the_database_and_keeps_the_previous_one(data: Path, tmp_path: Path) -> None:
    saved, _ = backup.backup(data, tmp_path / "saved.db")
    with SqliteBackend(data / "seacat.db") as b:
        issue(b.certificates, TENANT, "after-the-backup")
    (data / "seacat.db-wal").write_bytes(b"")  # a WAL left beside it must not meet the restored file
    message = backup.restore(data, saved)
    assert "restored" in message and "seacat.db-before-restore" in message
    assert not (data / "seacat.db-wal").exists() and not (data / "seacat.db-restoring").exists()
    assert (data / "seacat.db").stat().st_mode & 0o777 == 0o600
    with SqliteBackend(data / "seacat.db") as b:
        assert b.certificates.get_identity(TENANT, "after-the-backup") is None
        assert b.certificates.get_identity(TENANT, "id-0") is not None
    with SqliteBackend(data / "seacat.db-before-restore") as b:
        assert b.certificates.get_identity(TENANT, "after-the-backup") is not None
    # make reset still knows every file of the directory
    from embedded.run import our_files

    assert datadir.removable(data, our_files())


def test_restore_refuses_while_served_with_another_kek_or_a_foreign_file(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.settings import get_settings

    saved, _ = backup.backup(data, tmp_path / "saved.db")
    before = (data / "seacat.db").read_bytes()
    fd = datadir.lock(data)
    try:
        with pytest.raises(backup.BackupError, match="stop it first"):
            backup.restore(data, saved)
    finally:
        os.close(fd)
    monkeypatch.setenv("SEACAT_LOCAL_KEK", "A" * 43 + "=")
    get_settings.cache_clear()
    with pytest.raises(backup.BackupError, match=f"sealed with the key-encryption key {load_kek(None, data).id}"):
        backup.restore(data, saved)
    monkeypatch.delenv("SEACAT_LOCAL_KEK")
    get_settings.cache_clear()
    foreign = tmp_path / "notes.db"
    sqlite3.connect(foreign).execute("CREATE TABLE notes (x)").connection.close()
    with pytest.raises(backup.BackupError, match="not a SeaCat PKI database"):
        backup.restore(data, foreign)
    newer = tmp_path / "newer.db"
    backup.copy_database(saved, newer)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(backup.BackupError, match="newer release"):
        backup.restore(data, newer)
    assert (data / "seacat.db").read_bytes() == before
    assert not (data / "seacat.db-before-restore").exists() and not (data / "seacat.db-restoring").exists()


def test_the_command_says_why_it_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert backup.main(["--data-dir", str(tmp_path / "none"), "--to", str(tmp_path / "x.db")]) == 2
    assert "holds no database" in capsys.readouterr().err
