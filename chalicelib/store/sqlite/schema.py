"""The SQLite schema, versioned from the first one: ``MIGRATIONS[i]`` takes a database from
version ``i`` to ``i + 1``; the version is the database header's ``user_version``.

Opening a database applies the migrations it lacks, all in one transaction (a crash half-way leaves
the old version whole), under the write lock (two processes opening at once migrate once). A
database of a newer version than this code knows is refused: the code would misread it.

A migration is a tuple of single statements (``executescript`` would commit the transaction).
Never edit a migration that has shipped; append one.

Every key and every index starts with the tenant (the audit trail's: the tenant, '' for events of
no tenant), as the DynamoDB keys do, and every query names it. Times are ISO-8601 UTC text to the
microsecond (``2024-05-01T12:00:00.000000Z``: fixed width, text order is time order); serials are
lowercase hex without leading zeros (a serial has up to 159 bits: more than an INTEGER); DER and
other bytes are BLOBs. See docs/data-model.md, "SQLite (the embedded run)".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# 'SCat': marks the file as this service's database.
APPLICATION_ID = 0x53436174


class SchemaError(RuntimeError):
    """The database cannot be used by this code (a newer schema, another application's file)."""


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the tables of the DynamoDB data model.
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE tenants (
            tenant_id TEXT NOT NULL PRIMARY KEY,
            config TEXT NOT NULL,  -- TenantConfig.to_json()
            key_secret TEXT NOT NULL,
            key_fingerprint TEXT NOT NULL,
            key_imported INTEGER NOT NULL,
            active_ca TEXT,
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            version INTEGER NOT NULL
        )""",
        """CREATE TABLE certificates (
            tenant_id TEXT NOT NULL,
            cert_id TEXT NOT NULL,
            kind TEXT NOT NULL,  -- ca | seacat
            serial TEXT NOT NULL,
            der BLOB NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            identity TEXT,
            ca_id TEXT,
            cr_id TEXT,
            revoked_at TEXT,
            revocation_reason TEXT,
            PRIMARY KEY (tenant_id, cert_id)
        )""",
        # An identity's certificates, newest first.
        """CREATE INDEX certificates_by_identity ON certificates (tenant_id, identity, created_at, cert_id)
            WHERE identity IS NOT NULL""",
        # The CRL: revoked certificates only.
        """CREATE INDEX certificates_revoked ON certificates (tenant_id, serial, cert_id)
            WHERE revoked_at IS NOT NULL""",
        # Serial claims: a serial is never issued twice in a tenant (CA certificates claim none).
        """CREATE TABLE serials (
            tenant_id TEXT NOT NULL,
            serial TEXT NOT NULL,
            cert_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, serial),
            FOREIGN KEY (tenant_id, cert_id) REFERENCES certificates (tenant_id, cert_id)
        ) WITHOUT ROWID""",
        # A tenant's CA certificates in the order they were added (the tenant item's `cas` list).
        """CREATE TABLE tenant_cas (
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            position INTEGER NOT NULL,
            cert_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, position),
            FOREIGN KEY (tenant_id, cert_id) REFERENCES certificates (tenant_id, cert_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE identities (
            tenant_id TEXT NOT NULL,
            identity TEXT NOT NULL,
            application TEXT,
            approved INTEGER NOT NULL,
            blocked INTEGER NOT NULL,
            revoked_at TEXT,
            revocation_reason TEXT,
            revoked_serials TEXT,  -- hex serials, space-separated; NULL: none
            cert_id TEXT,
            cert_serial TEXT,
            cert_der BLOB,
            cert_not_before TEXT,
            cert_not_after TEXT,
            certificates INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, identity)
        )""",
        """CREATE TABLE requests (
            tenant_id TEXT NOT NULL,
            cr_id TEXT NOT NULL,
            identity TEXT NOT NULL,
            application TEXT NOT NULL,
            der BLOB NOT NULL,
            state TEXT NOT NULL,  -- pending | approved | rejected | issued | failed
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            attributes TEXT NOT NULL,  -- JSON [[name, value], ...]
            created_raw TEXT,
            valid_to_raw TEXT,
            reason TEXT,
            cert_id TEXT,
            decided_by TEXT,
            PRIMARY KEY (tenant_id, cr_id)
        )""",
        # Pending requests, oldest first (the DynamoDB pending-index, sparse too).
        "CREATE INDEX requests_pending ON requests (tenant_id, created_at, cr_id) WHERE state = 'pending'",
        """CREATE TABLE tokens (
            token_id TEXT NOT NULL PRIMARY KEY,
            token_hash TEXT NOT NULL,
            tenant_id TEXT,  -- NULL: an operator token
            label TEXT,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        """CREATE TABLE audit (
            tenant TEXT NOT NULL,  -- '': an event of no tenant
            sk TEXT NOT NULL,  -- {ISO time}#{16-hex event id}, as DynamoDB's sort key
            event TEXT NOT NULL,
            actor TEXT NOT NULL,
            subject TEXT,
            outcome TEXT,
            details TEXT,  -- JSON
            expires_at TEXT NOT NULL,
            PRIMARY KEY (tenant, sk)
        ) WITHOUT ROWID""",
        "CREATE INDEX audit_by_event ON audit (tenant, event, sk)",
        "CREATE INDEX audit_expiry ON audit (expires_at)",
    ),
    # 2: the CA lifecycle (rotation, retirement, CA revocation). Rows of version 1 read as before:
    # no key secret (the tenant's first key), trusted.
    (
        # The secret of each CA certificate's key; NULL: the tenant's first key (tenants.key_secret).
        "ALTER TABLE tenant_cas ADD COLUMN key_secret TEXT",
        # As stored: the active one is the trusted one tenants.active_ca names, never stored.
        """ALTER TABLE tenant_cas ADD COLUMN state TEXT NOT NULL DEFAULT 'trusted'
            CHECK (state IN ('trusted', 'retired', 'revoked'))""",
        "ALTER TABLE tenant_cas ADD COLUMN state_at TEXT",  # when it was retired or revoked
        # CA certificates: the final CRL signed as their key went.
        "ALTER TABLE certificates ADD COLUMN final_crl BLOB",
        # How many unexpired, unrevoked certificates a CA certificate issued (DynamoDB's ca-index).
        """CREATE INDEX certificates_by_ca ON certificates (tenant_id, ca_id, not_after)
            WHERE ca_id IS NOT NULL AND revoked_at IS NULL""",
    ),
    # 3: PKCS#10 CSRs beside SeaCat CRs in the requests table. Rows of version 2 read as before: CRs.
    (
        "ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'cr' CHECK (kind IN ('cr', 'csr'))",
        "ALTER TABLE requests ADD COLUMN profile TEXT",  # a CSR's profile
    ),
    # 4: EST enrolment credentials (HTTP Basic): the SHA-256 of the password only; a username is unique
    # across tenants, as DynamoDB's tokens table key is.
    (
        """CREATE TABLE est_credentials (
            tenant_id TEXT NOT NULL,
            username TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            profile TEXT NOT NULL,
            uses INTEGER NOT NULL,
            uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            label TEXT,
            last_used_at TEXT,
            PRIMARY KEY (tenant_id, username)
        )""",
        # A tenant's credentials, newest first.
        "CREATE INDEX est_credentials_by_time ON est_credentials (tenant_id, created_at, username)",
    ),
    # 5: admin tokens that expire, and a tenant's tokens listed. Rows of version 4 read as before: no expiry.
    (
        "ALTER TABLE tokens ADD COLUMN expires_at TEXT",  # NULL: until revoked
        # A tenant's tokens, newest first (operator tokens, tenant_id NULL, are not listed).
        """CREATE INDEX tokens_by_tenant ON tokens (tenant_id, created_at, token_id)
            WHERE tenant_id IS NOT NULL""",
    ),
)

VERSION = len(MIGRATIONS)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check(conn: sqlite3.Connection, version: int, path: Path) -> None:
    if version > VERSION:
        raise SchemaError(
            f"{path} has schema version {version}, this code knows versions up to {VERSION}: "
            "it was written by a newer release; run that release (or another database file)"
        )
    if version and conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise SchemaError(f"{path} is not a SeaCat PKI database")


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """WAL mode, then the migrations the database lacks (nothing to do, no write lock taken)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # a file system without shared memory, an in-memory database
        raise SchemaError(f"{path}: SQLite refused WAL mode (journal mode {mode})")
    version = _version(conn)
    _check(conn, version, path)
    if version == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # another process may have migrated meanwhile
        _check(conn, version, path)
        for migration in MIGRATIONS[version:]:
            for statement in migration:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
