"""chalicelib.keystore.local: the KeyStore port on this machine (make run), envelope-encrypted in SQLite."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.cache import Cache
from chalicelib.errors import SecretAlreadyExists, Unavailable
from chalicelib.keystore.local import (
    KEK_FILE,
    SCHEDULED,
    WRONG_KEK,
    DamagedSecret,
    KeyEncryptionKeyError,
    LocalKeyStore,
    LocalKeyStoreError,
    load_kek,
    seal,
    unseal,
)
from embedded.run import state_summary
from tests.conftest import TEST_ENV, reset_caches

KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))
WEBHOOK = "webhook-secret"


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    yield
    reset_caches()


def store(database: Path, kek: bytes = KEK) -> LocalKeyStore:
    """A store with fresh caches, as a new process has."""
    return LocalKeyStore(database, kek, Cache("keys", 16), Cache("secrets", 16))


def same_key(a: ec.EllipticCurvePrivateKey, b: ec.EllipticCurvePrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    writer = store(database)
    key = ec.generate_private_key(ec.SECP256R1())
    name = writer.create("acme", key)
    assert name == "seacat/test/acme/ca-key" == writer.secret_name("acme")
    assert writer.put_secret("acme", WEBHOOK, b"\x00first", replace=False) == "seacat/test/acme/webhook-secret"

    reader = store(database)  # another process: nothing cached
    assert same_key(reader.load(name), key)
    assert reader.load_secret("acme", WEBHOOK) == b"\x00first"
    assert reader.load_secret("other", WEBHOOK) is None
    assert reader.check() == {"ca-key": 1, WEBHOOK: 1}

    # a CA key is never replaced; a secret only when asked to
    with pytest.raises(SecretAlreadyExists):
        reader.create("acme", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SecretAlreadyExists):
        reader.put_secret("acme", WEBHOOK, b"second", replace=False)
    with pytest.raises(ValueError):
        reader.put_secret("acme", "ca-key", b"x", replace=True)
    reader.put_secret("acme", WEBHOOK, b"second", replace=True)
    assert store(database).load_secret("acme", WEBHOOK) == b"second"
    assert same_key(store(database).load(name), key)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version FROM local_secrets WHERE kind = ?", (WEBHOOK,)).fetchone() == (2,)
    writer.close()
    reader.close()


def test_wrong_kek_is_told_not_a_traceback(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    name = store(database).create("acme", ec.generate_private_key(ec.SECP256R1()))
    store(database).put_secret("acme", WEBHOOK, b"s", replace=False)
    wrong = store(database, OTHER_KEK)
    with pytest.raises(KeyEncryptionKeyError, match=WRONG_KEK) as checked:
        wrong.check()
    assert "2 of them" in str(checked.value)
    with pytest.raises(KeyEncryptionKeyError, match=WRONG_KEK) as loading:
        wrong.load(name)
    with pytest.raises(KeyEncryptionKeyError, match=WRONG_KEK):
        wrong.load_secret("acme", WEBHOOK)
    # no chained exception to print: the message is the whole story
    assert checked.value.__cause__ is None and checked.value.__context__ is None
    assert loading.value.__cause__ is None and loading.value.__suppress_context__


def test_tampered_ciphertext_and_wrapped_key_do_not_open(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    name = store(database).create("acme", ec.generate_private_key(ec.SECP256R1()))
    for column in ("ciphertext", "wrapped_key", "nonce", "key_nonce"):
        with sqlite3.connect(database) as db:
            (value,) = db.execute(f"SELECT {column} FROM local_secrets WHERE name = ?", (name,)).fetchone()
            flipped = bytes([value[0] ^ 1]) + value[1:]
            db.execute(f"UPDATE local_secrets SET {column} = ? WHERE name = ?", (flipped, name))
        with pytest.raises(DamagedSecret, match="does not open"):
            store(database).load(name)
        with sqlite3.connect(database) as db:
            db.execute(f"UPDATE local_secrets SET {column} = ? WHERE name = ?", (value, name))
    store(database).load(name)  # restored: opens again


def test_a_secret_moved_to_another_name_does_not_open(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    keystore = store(database)
    keystore.put_secret("mallory", WEBHOOK, b"mallory's own", replace=False)
    keystore.put_secret("victim", WEBHOOK, b"the victim's", replace=False)
    columns = "kek_id, key_nonce, wrapped_key, nonce, ciphertext"
    with sqlite3.connect(database) as db:
        row = db.execute(f"SELECT {columns} FROM local_secrets WHERE tenant_id = 'mallory'").fetchone()
        db.execute(
            "UPDATE local_secrets SET kek_id = ?, key_nonce = ?, wrapped_key = ?, nonce = ?, ciphertext = ? "
            "WHERE tenant_id = 'victim'",
            row,
        )
    with pytest.raises(DamagedSecret, match="copied from another secret"):
        store(database).load_secret("victim", WEBHOOK)
    # the value alone, under its own data key, is bound to its name as well (AAD)
    sealed = seal(KEK, "seacat/test/a/webhook-secret", b"value")
    assert unseal(KEK, "seacat/test/a/webhook-secret", sealed) == b"value"
    with pytest.raises(DamagedSecret):
        unseal(KEK, "seacat/test/b/webhook-secret", sealed)


def test_files_are_owner_only_and_hold_no_plaintext(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    old_umask = os.umask(0o022)  # a usual umask: the modes must not depend on it
    try:
        kek = load_kek(None, data, create=True)
        assert kek.created and kek.source == str(data / KEK_FILE)
        keystore = store(data / "seacat.db", kek.key)
        ca_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
        for n, key in enumerate(ca_keys):
            keystore.create(f"tenant-{n}", key)
        webhook = os.urandom(32)
        keystore.put_secret("tenant-0", WEBHOOK, webhook, replace=False)
        keystore.put_secret("tenant-0", WEBHOOK, webhook[::-1], replace=True)
        files = sorted(p.name for p in data.iterdir())
        # the write-ahead log is there while a connection is open: checked as it is on disk now
        assert {"seacat.db", "seacat.db-wal", "seacat.db-shm", KEK_FILE} <= set(files), files
        assert all(mode(data / f) == 0o600 for f in files), {f: oct(mode(data / f)) for f in files}
        on_disk = b"".join((data / f).read_bytes() for f in files)
        keystore.close()
        on_disk += b"".join(p.read_bytes() for p in data.iterdir())  # after the checkpoint at close
    finally:
        os.umask(old_umask)

    assert b"PRIVATE KEY" not in on_disk
    for key in ca_keys:
        for form in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
            pem = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
            for line in pem.splitlines()[1:-1]:
                assert line not in on_disk
        scalar = key.private_numbers().private_value
        assert scalar.to_bytes(32, "big") not in on_disk
        assert format(scalar, "064x").encode() not in on_disk
    for value in (webhook, webhook[::-1]):
        assert value not in on_disk and value.hex().encode() not in on_disk
    assert base64.b64encode(webhook) not in on_disk


# -- keys of rotations, and their deletion ---------------------------------------------------------


def deletion(database: Path, name: str) -> tuple[datetime, datetime] | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT deleted_at, delete_after FROM local_secrets WHERE name = ?", (name,)).fetchone()
    assert row is not None, f"no row {name}"
    return (datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])) if row[0] else None


def test_a_deleted_key_stays_for_its_recovery_window_then_is_purged(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    keystore = store(database)
    first_key, rotated_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    first = keystore.create("acme", first_key)
    rotated = keystore.create("acme", rotated_key, name=keystore.secret_name("acme", "ab" * 32))
    assert rotated == "seacat/test/acme/ca-key-abababababababab"
    assert isinstance(store(database).load(rotated).curve, ec.SECP384R1)  # a rotation may choose P-384
    with pytest.raises(ValueError, match="7 to 30 days"):
        keystore.schedule_deletion(first, 6)
    with pytest.raises(ValueError, match="7 to 30 days"):
        keystore.schedule_deletion(first, 31)
    keystore.put_secret("acme", WEBHOOK, b"kept", replace=False)
    with pytest.raises(ValueError, match="only CA key"):
        keystore.schedule_deletion("seacat/test/acme/webhook-secret", 30)

    before = datetime.now(UTC)
    assert keystore.schedule_deletion(first, 7) is True
    marked = deletion(database, first)
    assert marked is not None and before - timedelta(seconds=1) <= marked[0] <= datetime.now(UTC)
    assert marked[1] - marked[0] == timedelta(days=7)
    assert keystore.schedule_deletion(first, 30) is False  # scheduled already: the window stays
    assert deletion(database, first) == marked
    for reader in (keystore, store(database)):  # this process (its cache dropped the key), another
        with pytest.raises(Unavailable):
            reader.load(first)
    with pytest.raises(SecretAlreadyExists):  # the name stays taken while the key can be restored
        keystore.create("acme", ec.generate_private_key(ec.SECP256R1()))
    assert same_key(store(database).load(rotated), rotated_key)
    assert store(database).load_secret("acme", WEBHOOK) == b"kept"
    assert store(database).check() == {"ca-key": 1, WEBHOOK: 1, SCHEDULED: 1}  # opening it too
    assert "1 CA key scheduled for deletion" in state_summary({}, store(database).check())

    # restored by hand within the window, as the module says
    with sqlite3.connect(database) as db:
        db.execute("UPDATE local_secrets SET deleted_at = NULL, delete_after = NULL WHERE name = ?", (first,))
    assert same_key(store(database).load(first), first_key)
    assert keystore.schedule_deletion(first, 30) is True

    # the window ends: the key is gone, and the next write purges its row
    with sqlite3.connect(database) as db:
        db.execute("UPDATE local_secrets SET delete_after = ? WHERE name = ?", ("2000-01-01T00:00:00.000+00:00", first))
    with pytest.raises(LocalKeyStoreError, match="no secret"):
        store(database).load(first)
    assert keystore.schedule_deletion(first, 30) is False  # gone: nothing to do
    assert store(database).check() == {"ca-key": 1, WEBHOOK: 1}  # the purge of that write
    again = ec.generate_private_key(ec.SECP256R1())
    assert keystore.create("acme", again) == first  # the name is free again
    assert same_key(store(database).load(first), again) and deletion(database, first) is None
    keystore.close()


def test_a_table_made_before_deletions_gets_their_columns(tmp_path: Path) -> None:
    database = tmp_path / "seacat.db"
    old = store(database)
    key = ec.generate_private_key(ec.SECP256R1())
    name = old.create("acme", key)
    old.close()
    with sqlite3.connect(database) as db:  # the table as the release before wrote it
        for column in ("deleted_at", "delete_after"):
            db.execute(f"ALTER TABLE local_secrets DROP COLUMN {column}")
    keystores = [store(database) for _ in range(2)]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def open_it(keystore: LocalKeyStore) -> None:  # two processes' first calls at once: one adds them
        barrier.wait(10)
        try:
            keystore.check()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_it, args=(k,)) for k in keystores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    with sqlite3.connect(database) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(local_secrets)")]
    assert columns[-2:] == ["deleted_at", "delete_after"]
    assert same_key(keystores[0].load(name), key) and deletion(database, name) is None  # not scheduled
    assert keystores[1].schedule_deletion(name, 30) is True
    for k in keystores:
        k.close()


def test_kek_from_the_environment_or_the_file(tmp_path: Path) -> None:
    env_kek = load_kek(base64.b64encode(KEK).decode(), tmp_path)
    assert env_kek.key == KEK and env_kek.source == "SEACAT_LOCAL_KEK" and not (tmp_path / KEK_FILE).exists()
    assert str(KEK) not in repr(env_kek) and base64.b64encode(KEK).decode() not in repr(env_kek)
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(KeyEncryptionKeyError, match="SEACAT_LOCAL_KEK must hold the base64 of 32"):
            load_kek(bad, tmp_path)
    with pytest.raises(KeyEncryptionKeyError, match="no key-encryption key"):
        load_kek(None, tmp_path)

    # made once, never replaced: processes racing to make it all end with the same key
    found: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: found.append(load_kek(None, tmp_path, create=True).key)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(found) == 8 and len(set(found)) == 1
    assert load_kek(None, tmp_path, create=True).key == found[0] and mode(tmp_path / KEK_FILE) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEK_FILE]  # no temporary file left
    (tmp_path / KEK_FILE).write_text("damaged\n")
    with pytest.raises(KeyEncryptionKeyError, match=f"{KEK_FILE} must hold the base64"):
        load_kek(None, tmp_path)


def test_the_context_of_the_sqlite_backend_uses_the_local_key_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context
    from chalicelib.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="SEACAT_DATA_DIR"):
        load_settings({"SEACAT_BACKEND": "sqlite"})
    with pytest.raises(SettingsError, match="SEACAT_BACKEND must be one of"):
        load_settings({"SEACAT_BACKEND": "postgres"})
    assert load_settings({}).backend == "aws"
    assert "SEACAT_LOCAL_KEK" not in repr(load_settings({"SEACAT_LOCAL_KEK": "c2VjcmV0"}))
    assert "c2VjcmV0" not in repr(load_settings({"SEACAT_LOCAL_KEK": "c2VjcmV0"}))

    monkeypatch.setenv("SEACAT_BACKEND", "sqlite")
    monkeypatch.setenv("SEACAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEACAT_LOCAL_KEK", base64.b64encode(KEK).decode())
    context.reset()
    built = context.current()
    assert isinstance(built.keystore, LocalKeyStore)
    assert built.keystore.database == tmp_path / context.LOCAL_DATABASE
    key = ec.generate_private_key(ec.SECP256R1())
    name = built.keystore.create("ctx", key)
    assert built.caches.keys.get(name) is key  # the context's cache holds the decrypted key
    assert same_key(store(tmp_path / context.LOCAL_DATABASE).load(name), key)
    built.keystore.close()
    context.reset()
