"""chalicelib.keystore.local: the KeyStore port on this machine (make run), envelope-encrypted in SQLite."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.cache import Cache
from chalicelib.errors import SecretAlreadyExists
from chalicelib.keystore.local import (
    KEK_FILE,
    WRONG_KEK,
    DamagedSecret,
    KeyEncryptionKeyError,
    LocalKeyStore,
    load_kek,
    seal,
    unseal,
)
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
