"""Tenant CA private keys and other tenant secrets on this machine: the KeyStore port of `make run`
and of self-hosting, encrypted the way Secrets Manager and KMS encrypt them (envelope encryption).

Each secret value gets its own random 256-bit data key and is encrypted with AES-256-GCM under it,
with the secret's name as associated data: a ciphertext copied under another name does not open.
The data key is wrapped with AES-256-GCM under the key-encryption key (KEK), bound to the name too.
Only the wrapped key, the nonces and the ciphertexts are stored, in the table ``local_secrets`` of
the data directory's SQLite file (one file, one backup; this module creates its table and uses its
own connection, the storage adapters own the other tables).

The KEK is 32 random bytes: ``SEACAT_LOCAL_KEK`` (their base64) or else the file ``kek`` in the data
directory (0600, made by the first `make run`). Whoever holds the database without the KEK holds
nothing usable; keep the two apart where it matters (SEACAT_LOCAL_KEK from a secret store, the file
out of backups). Each row records the id of the KEK that sealed it (an HMAC of a fixed label under
the KEK, which tells nothing about the key), so a wrong KEK is told apart from a damaged row.

As on Secrets Manager, decrypted CA keys stay in the context's ``caches.keys`` (a CA key is never
replaced) and other secrets in ``caches.secrets`` for the tenant cache's time to live.

Deleting a CA key (``schedule_deletion``, once no trusted CA certificate is over it) works as Secrets
Manager's recovery window: the row stays, marked ``deleted_at`` with a deadline ``delete_after``
(now + the window, 7-30 days). Until then it can be restored by hand, and meanwhile it cannot be
loaded (``Unavailable``, as Secrets Manager refuses a secret marked for deletion) and its name stays
taken (``SecretAlreadyExists``). Past the deadline it reads as gone, and every write of this store
(a secret created or replaced, a deletion scheduled) first purges the rows past their deadline.
To restore one within its window (the service itself never does), with the service stopped or not:

    sqlite3 .seacat-local/seacat.db \
      "UPDATE local_secrets SET deleted_at = NULL, delete_after = NULL WHERE name = '<secret name>'"

(the secret's name is in the ``key.deletion_scheduled`` audit event). A server worker that had the
key in its cache keeps it there, as a Lambda container does on AWS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.ca import keys
from chalicelib.cache import Cache, Missing
from chalicelib.errors import InvalidInput, SecretAlreadyExists, Unavailable
from chalicelib.keystore import replaceable_kind
from chalicelib.settings import get_settings

KEK_FILE = "kek"
KEK_ENV = "SEACAT_LOCAL_KEK"
KEK_BYTES = 32
SCHEME = "envelope/aes-256-gcm/v1"
WRONG_KEK = "the key-encryption key does not open this data directory's secrets"
_KEK_ID_LABEL = b"seacat-pki local key store: key-encryption key id"
_WRAP_LABEL = b"seacat-pki local key store: data key of "
BUSY_TIMEOUT_SECONDS = 10.0
RECOVERY_DAYS = (7, 30)  # the recovery windows schedule_deletion accepts, as Secrets Manager's
# The key of check()'s answer that counts the secrets scheduled for deletion (not counted by kind).
SCHEDULED = "scheduled-for-deletion"

log = logging.getLogger("seacat.keystore")

SCHEMA = """
CREATE TABLE IF NOT EXISTS local_secrets (
    name        TEXT PRIMARY KEY,   -- e.g. seacat/local/<tenant>/ca-key, as on Secrets Manager
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- ca-key, webhook-secret
    version     INTEGER NOT NULL,   -- 1, then +1 per replacement
    scheme      TEXT NOT NULL,      -- how the columns below were made (SCHEME)
    kek_id      TEXT NOT NULL,      -- the id of the KEK that wrapped the data key
    key_nonce   BLOB NOT NULL,      -- AES-GCM nonce of the wrap
    wrapped_key BLOB NOT NULL,      -- the data key, AES-256-GCM under the KEK (AAD: label + name)
    nonce       BLOB NOT NULL,      -- AES-GCM nonce of the value
    ciphertext  BLOB NOT NULL,      -- the value, AES-256-GCM under the data key (AAD: the name)
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,               -- CA keys: when the deletion was scheduled (NULL: not scheduled)
    delete_after TEXT               -- and the end of its recovery window, when the row is purged
) STRICT
"""
# Added to tables made before deletions could be scheduled (their rows: not scheduled).
_DELETION_COLUMNS = ("deleted_at", "delete_after")
_SELECT = "SELECT scheme, kek_id, key_nonce, wrapped_key, nonce, ciphertext, deleted_at FROM local_secrets"
# A row past its recovery window is gone, purged or not yet.
_READ = f"{_SELECT} WHERE name = ? AND (delete_after IS NULL OR delete_after > ?)"
_PURGE = "DELETE FROM local_secrets WHERE delete_after IS NOT NULL AND delete_after <= ?"
_SCHEDULE = """UPDATE local_secrets SET deleted_at = ?, delete_after = ?
WHERE name = ? AND kind = 'ca-key' AND deleted_at IS NULL"""


class LocalKeyStoreError(RuntimeError):
    """The local key store cannot be used as it is; the message says why (never a secret)."""


class KeyEncryptionKeyError(LocalKeyStoreError):
    """No usable KEK, or a KEK that does not open the stored secrets."""


class DamagedSecret(LocalKeyStoreError):
    """A stored secret does not open under its own data key: changed, or copied from another name."""


# --- the key-encryption key -----------------------------------------------------------------------


@dataclass(frozen=True)
class Kek:
    key: bytes = field(repr=False)
    source: str  # where it came from, for the operator: "SEACAT_LOCAL_KEK" or the file's path
    created: bool = False  # generated by this call

    @property
    def id(self) -> str:
        return kek_id(self.key)


def kek_id(kek: bytes) -> str:
    return hmac.new(kek, _KEK_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def parse_kek(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEK_BYTES:
        raise KeyEncryptionKeyError(
            f"{where} must hold the base64 of {KEK_BYTES} random bytes (e.g. the output of `openssl rand -base64 32`)"
        )
    return raw


def load_kek(env_value: str | None, data_dir: Path, *, create: bool = False) -> Kek:
    """The KEK from SEACAT_LOCAL_KEK, else from ``data_dir/kek``; ``create``: make that file when absent
    (atomically: of two processes racing, both end with the one that was linked first)."""
    if env_value:
        return Kek(parse_kek(env_value, KEK_ENV), KEK_ENV)
    path = data_dir / KEK_FILE
    created = False
    if create and not path.exists():
        created = _create_kek_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyEncryptionKeyError(f"no key-encryption key: neither {KEK_ENV} nor the file {path} is there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyEncryptionKeyError(f"{path} cannot be read ({type(exc).__name__})") from None
    return Kek(parse_kek(text, str(path)), str(path), created)


def _create_kek_file(path: Path) -> bool:
    text = base64.b64encode(os.urandom(KEK_BYTES)) + b"\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if it exists: never replaces a KEK
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return created


def sealed_count(database: Path) -> int:
    """How many secrets ``database`` holds (0 without it or its table); needs no KEK."""
    if not database.exists():
        return 0
    conn = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        return int(conn.execute("SELECT count(*) FROM local_secrets").fetchone()[0])
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        conn.close()


# --- sealing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    kek_id: str
    key_nonce: bytes
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def seal(kek: bytes, name: str, value: bytes) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce, key_nonce = os.urandom(12), os.urandom(12)
    ciphertext = AESGCM(data_key).encrypt(nonce, value, name.encode("utf-8"))
    wrapped = AESGCM(kek).encrypt(key_nonce, data_key, _WRAP_LABEL + name.encode("utf-8"))
    return Sealed(kek_id(kek), key_nonce, wrapped, nonce, ciphertext)


def unseal(kek: bytes, name: str, sealed: Sealed) -> bytes:
    """The value; KeyEncryptionKeyError for a wrong KEK, DamagedSecret for a changed or moved record."""
    try:
        data_key = AESGCM(kek).decrypt(sealed.key_nonce, sealed.wrapped_key, _WRAP_LABEL + name.encode("utf-8"))
    except InvalidTag:
        if sealed.kek_id != kek_id(kek):
            raise KeyEncryptionKeyError(WRONG_KEK) from None
        raise DamagedSecret(
            f"the secret {name} does not open: its record was changed, or copied from another secret"
        ) from None
    try:
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, name.encode("utf-8"))
    except InvalidTag:
        raise DamagedSecret(
            f"the secret {name} does not open: its value was changed, or copied from another secret"
        ) from None


# --- the store ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(at: datetime) -> str:
    """A time as the table holds it (fixed width, one offset: text order is time order)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _add_deletion_columns(conn: sqlite3.Connection) -> None:
    """Give a table made before deletions could be scheduled its two columns, once (of two processes
    opening it at once, the second finds them added)."""

    def missing() -> list[str]:
        have = {str(row[1]) for row in conn.execute("PRAGMA table_info(local_secrets)")}
        return [c for c in _DELETION_COLUMNS if c not in have]

    if not missing():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for column in missing():
            conn.execute(f"ALTER TABLE local_secrets ADD COLUMN {column} TEXT")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class LocalKeyStore:
    """The KeyStore port on the table ``local_secrets`` of ``database``; its caches are the context's."""

    def __init__(
        self,
        database: Path,
        kek: bytes,
        keys: Cache[str, ec.EllipticCurvePrivateKey],
        secrets: Cache[str, bytes],
    ) -> None:
        if len(kek) != KEK_BYTES:
            raise KeyEncryptionKeyError(f"a key-encryption key has {KEK_BYTES} bytes")
        self.database = database
        self._kek = kek
        self._kek_id = kek_id(kek)
        self._keys = keys
        self._secrets = secrets
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    # -- the connection: one per process (a forked worker opens its own), shared by its threads

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            if not self.database.exists():  # owner-only from the start; SQLite gives its -wal and -shm the same mode
                os.close(os.open(self.database, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self.database, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")  # a key the service acknowledged survives a power loss
                conn.execute(SCHEMA)
                _add_deletion_columns(conn)
            except BaseException:
                conn.close()
                raise
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _read(self, name: str) -> Sealed | None:
        """The sealed secret; None if there is none (or it is past its recovery window). Unavailable if
        it is scheduled for deletion, as Secrets Manager refuses to read one."""
        row = self._row(name)
        if row is None:
            return None
        sealed, deleted_at = row
        if deleted_at is not None:
            raise Unavailable("the key store is not available") from RuntimeError(
                f"the secret {name} is scheduled for deletion"
            )
        return sealed

    def _row(self, name: str) -> tuple[Sealed, str | None] | None:
        try:
            with self._lock:
                row = self._db().execute(_READ, (name, _stamp(_now()))).fetchone()
        except sqlite3.Error as exc:
            raise Unavailable("the key store is not available") from RuntimeError(type(exc).__name__)
        if row is None:
            return None
        if row[0] != SCHEME:
            raise DamagedSecret(f"the secret {name} was stored as {row[0]!r}, this version reads {SCHEME}")
        return Sealed(str(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]), bytes(row[5])), row[6]

    def _transaction(self, statements: list[tuple[str, tuple[object, ...]]]) -> list[int]:
        """Run the statements in one write transaction, after purging the rows past their recovery
        window; each one's rowcount. IntegrityError (a name in use) is the caller's to translate."""
        at = _stamp(_now())
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                purged = db.execute(_PURGE, (at,)).rowcount
                counts = [db.execute(sql, args).rowcount for sql, args in statements]
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if purged:
            log.info("the local key store purged %d secret(s) past their recovery window", purged)
        return counts

    def _write(self, tenant_id: str, kind: str, name: str, value: bytes, *, replace: bool) -> None:
        sealed = seal(self._kek, name, value)
        now = _stamp(_now())
        columns = (name, tenant_id, kind, SCHEME, sealed.kek_id, sealed.key_nonce, sealed.wrapped_key)
        insert = (
            "INSERT INTO local_secrets (name, tenant_id, kind, version, scheme, kek_id, key_nonce, wrapped_key, "
            "nonce, ciphertext, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if replace:
            insert += (
                " ON CONFLICT (name) DO UPDATE SET version = version + 1, scheme = excluded.scheme, "
                "kek_id = excluded.kek_id, key_nonce = excluded.key_nonce, wrapped_key = excluded.wrapped_key, "
                "nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at"
            )
        try:
            self._transaction([(insert, (*columns, sealed.nonce, sealed.ciphertext, now, now))])
        except sqlite3.IntegrityError:
            raise SecretAlreadyExists(name) from None
        except sqlite3.Error as exc:
            raise Unavailable("the key store is not available") from RuntimeError(type(exc).__name__)

    # -- the port

    def secret_name(self, tenant_id: str, fingerprint: str | None = None) -> str:
        """The tenant's first CA key's secret; with ``fingerprint``, the secret of a key a rotation
        made (the first name and ``-`` the first 16 hex digits of the fingerprint), as on AWS."""
        return f"{get_settings().secret_prefix}{tenant_id}/ca-key" + (f"-{fingerprint[:16]}" if fingerprint else "")

    def create(self, tenant_id: str, key: ec.EllipticCurvePrivateKey, *, name: str | None = None) -> str:
        """Store a CA key in secret ``name`` (default: the tenant's first key's); returns the name.
        Raises SecretAlreadyExists, also for a secret of that name scheduled for deletion."""
        name = name or self.secret_name(tenant_id)
        self._write(tenant_id, "ca-key", name, keys.private_key_to_pem(key), replace=False)
        self._keys.put(name, key)
        return name

    def load(self, name: str) -> ec.EllipticCurvePrivateKey:
        cached = self._keys.get(name)
        if not isinstance(cached, Missing):
            return cached
        sealed = self._read(name)
        if sealed is None:
            raise LocalKeyStoreError(f"the local key store has no secret {name}")
        try:
            key = keys.load_ca_private_key_pem(unseal(self._kek, name, sealed), curves=keys.ROTATION_CURVES)
        except InvalidInput:
            raise LocalKeyStoreError(f"the CA key in secret {name} cannot be read") from None
        self._keys.put(name, key)
        return key

    def schedule_deletion(self, name: str, recovery_days: int) -> bool:
        """Mark the CA key secret ``name`` deleted, to be purged after ``recovery_days`` (7-30); until
        then it can be restored by hand (see the module), but not loaded. True if this call scheduled
        it; False if it was scheduled already, or is gone."""
        if "/ca-key" not in name:
            raise ValueError("only CA key secrets are deleted here")
        if not RECOVERY_DAYS[0] <= recovery_days <= RECOVERY_DAYS[1]:
            raise ValueError(f"the recovery window is {RECOVERY_DAYS[0]} to {RECOVERY_DAYS[1]} days")
        self._keys.pop(name)
        at = _now()
        until = at + timedelta(days=recovery_days)
        try:
            (changed,) = self._transaction([(_SCHEDULE, (_stamp(at), _stamp(until), name))])
        except sqlite3.Error as exc:
            raise Unavailable("the key store is not available") from RuntimeError(type(exc).__name__)
        return changed == 1

    def _secret_name(self, tenant_id: str, kind: str) -> str:
        if not replaceable_kind(kind):
            raise ValueError(f"not a kind of tenant secret: {kind}")
        return f"{get_settings().secret_prefix}{tenant_id}/{kind}"

    def put_secret(self, tenant_id: str, kind: str, value: bytes, *, replace: bool) -> str:
        """Store a tenant secret; returns its name. Raises SecretAlreadyExists if it exists and not
        ``replace``; replacing puts a new version (a new data key) under the same name."""
        name = self._secret_name(tenant_id, kind)
        self._write(tenant_id, kind, name, bytes(value), replace=replace)
        self._secrets.put(name, bytes(value))
        return name

    def load_secret(self, tenant_id: str, kind: str) -> bytes | None:
        """A tenant secret, or None if it has none."""
        name = self._secret_name(tenant_id, kind)
        hit = self._secrets.get(name)
        if not isinstance(hit, Missing):
            return hit
        sealed = self._read(name)
        if sealed is None:
            return None
        value = unseal(self._kek, name, sealed)
        self._secrets.put(name, value)
        return value

    def forget(self) -> None:
        """Forget what this process holds (the next load reads the database)."""
        self._keys.clear()
        self._secrets.clear()

    # -- for the start-up

    def check(self) -> dict[str, int]:
        """That this KEK opens the stored secrets (KeyEncryptionKeyError if not); their number per kind,
        those scheduled for deletion apart (under ``SCHEDULED``, if any)."""
        try:
            with self._lock:
                db = self._db()
                by_kek = db.execute("SELECT kek_id, count(*) FROM local_secrets GROUP BY kek_id").fetchall()
                by_kind = db.execute(
                    "SELECT kind, count(*) FROM local_secrets WHERE deleted_at IS NULL GROUP BY kind"
                ).fetchall()
                scheduled = db.execute("SELECT count(*) FROM local_secrets WHERE deleted_at IS NOT NULL").fetchone()
                first = db.execute("SELECT name FROM local_secrets ORDER BY rowid LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise LocalKeyStoreError(f"{self.database.name} cannot be read: {exc}") from None
        others = sum(int(n) for kid, n in by_kek if kid != self._kek_id)
        if others:
            sealed_by = ", ".join(sorted(str(kid) for kid, _ in by_kek if kid != self._kek_id))
            raise KeyEncryptionKeyError(
                f"{WRONG_KEK}: {others} of them were sealed with the key {sealed_by}, this one is {self._kek_id}"
            )
        if first is not None:  # the ids agree: open one (scheduled for deletion or not), to be sure
            row = self._row(str(first[0]))
            if row is not None:
                unseal(self._kek, str(first[0]), row[0])
        counts = {str(kind): int(n) for kind, n in by_kind}
        if scheduled[0]:
            counts[SCHEDULED] = int(scheduled[0])
        return counts
