"""TenantStore on SQLite: a tenant row, its CA certificates in ``tenant_cas`` (in the order they were
added, the DER read from ``certificates``), a version for optimistic locking."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.domain import CaCert, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict
from chalicelib.store.sqlite.audit import insert_events
from chalicelib.store.sqlite.certificates import insert_certificate
from chalicelib.store.sqlite.db import Database, now, text, time_of

# One statement, one snapshot: the tenant with its CA certificates, one row per CA (none: one row).
_GET = """SELECT t.tenant_id, t.config, t.key_secret, t.key_fingerprint, t.key_imported, t.active_ca,
    t.created_at, t.modified_at, t.version, c.cert_id, c.der, c.created_at
FROM tenants AS t
LEFT JOIN tenant_cas AS a ON a.tenant_id = t.tenant_id
LEFT JOIN certificates AS c ON c.tenant_id = a.tenant_id AND c.cert_id = a.cert_id
WHERE t.tenant_id = ?
ORDER BY a.position"""
_INSERT = """INSERT INTO tenants (tenant_id, config, key_secret, key_fingerprint, key_imported, active_ca,
    created_at, modified_at, version) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, 1)"""
_UPDATE_CONFIG = """UPDATE tenants SET config = ?, modified_at = ?, version = version + 1
WHERE tenant_id = ? AND version = ?"""
_SET_ACTIVE_CA = """UPDATE tenants SET active_ca = ?, modified_at = ?, version = version + 1
WHERE tenant_id = ? AND version = ?"""
_ADD_CA = """INSERT INTO tenant_cas (tenant_id, position, cert_id)
SELECT ?, coalesce(max(position), -1) + 1, ? FROM tenant_cas WHERE tenant_id = ?"""


def _tenant(rows: list[Any]) -> Tenant | None:
    if not rows:
        return None
    tenant_id, config, secret, fingerprint, imported, active_ca, created_at, modified_at, version = rows[0][:9]
    return Tenant(
        tenant_id=tenant_id,
        config=TenantConfig.from_json(json.loads(config)),
        key_secret=secret,
        key_fingerprint=fingerprint,
        key_imported=bool(imported),
        cas=tuple(CaCert(r[9], bytes(r[10]), time_of(r[11])) for r in rows if r[9] is not None),
        active_ca=active_ca,
        created_at=time_of(created_at),
        modified_at=time_of(modified_at),
        version=version,
    )


class SqliteTenants:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None:
        with self._db.read() as conn:
            return _tenant(conn.execute(_GET, (tenant_id,)).fetchall())

    def create(
        self,
        tenant_id: str,
        config: TenantConfig,
        key_secret: str,
        key_fingerprint: str,
        imported: bool,
        audit: Sequence[Any] = (),
    ) -> Tenant:
        with self._db.write(f"tenant {tenant_id} was created concurrently") as conn:
            at = now()
            row = (tenant_id, json.dumps(config.to_json()), key_secret, key_fingerprint, int(imported))
            conn.execute(_INSERT, (*row, text(at), text(at)))
            insert_events(self._db, conn, audit)
        return Tenant(tenant_id, config, key_secret, key_fingerprint, imported, (), None, at, at, 1)

    def update_config(self, tenant: Tenant, config: TenantConfig, audit: Sequence[Any] = ()) -> Tenant:
        """Replace the configuration, guarded by the version the caller read."""
        stale = f"tenant {tenant.tenant_id} was changed concurrently, retry"
        with self._db.write(stale) as conn:
            changed = conn.execute(
                _UPDATE_CONFIG,
                (json.dumps(config.to_json()), text(now()), tenant.tenant_id, tenant.version),
            ).rowcount
            if changed != 1:
                raise Conflict(stale)
            insert_events(self._db, conn, audit)
            fresh = _tenant(conn.execute(_GET, (tenant.tenant_id,)).fetchall())
        assert fresh is not None
        return fresh

    def add_ca(self, tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = ()) -> None:
        """Store a new CA certificate and make it the tenant's active CA, atomically."""
        stale = f"tenant {tenant.tenant_id} was changed concurrently, retry"
        with self._db.write(stale) as conn:
            changed = conn.execute(
                _SET_ACTIVE_CA, (record.cert_id, text(record.created_at), tenant.tenant_id, tenant.version)
            ).rowcount
            if changed != 1:
                raise Conflict(stale)
            insert_certificate(conn, record)  # a certificate id in use: Conflict
            conn.execute(_ADD_CA, (tenant.tenant_id, record.cert_id, tenant.tenant_id))
            insert_events(self._db, conn, audit)
