"""TenantStore on SQLite: a tenant row, its CA certificates in ``tenant_cas`` (in the order they were
added, each with the secret of its key and its state; the DER read from ``certificates``), a version
for optimistic locking."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain import CaCert, CaState, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict
from chalicelib.store.sqlite.audit import insert_events
from chalicelib.store.sqlite.certificates import insert_certificate, set_final_crl
from chalicelib.store.sqlite.db import Database, now, text, time_of, time_or_none

# One statement, one snapshot: the tenant with its CA certificates, one row per CA (none: one row).
_GET = """SELECT t.tenant_id, t.config, t.key_secret, t.key_fingerprint, t.key_imported, t.active_ca,
    t.created_at, t.modified_at, t.version, c.cert_id, c.der, c.created_at, a.key_secret, a.state, a.state_at
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
_ADD_CA = """INSERT INTO tenant_cas (tenant_id, position, cert_id, key_secret, state)
SELECT ?, coalesce(max(position), -1) + 1, ?, ?, 'trusted' FROM tenant_cas WHERE tenant_id = ?"""
# ?1: whether active_ca is among the states set (then it is cleared).
_MOVE_ON = """UPDATE tenants SET active_ca = CASE WHEN ?1 THEN NULL ELSE active_ca END, modified_at = ?2,
    version = version + 1
WHERE tenant_id = ?3 AND version = ?4"""
_CA_IDS = "SELECT cert_id FROM tenant_cas WHERE tenant_id = ?"
_SET_STATE = "UPDATE tenant_cas SET state = ?, state_at = ? WHERE tenant_id = ? AND cert_id = ?"
# What tenant_cas.state may hold: the active one is derived from tenants.active_ca.
_STORED_STATES = frozenset({CaState.TRUSTED, CaState.RETIRED, CaState.REVOKED})


def _ca(row: Any) -> CaCert:
    # Rows of schema version 1 have no key secret (the tenant's first key) and read as trusted.
    cert_id, der, created_at, key_secret, state, state_at = row[9:15]
    return CaCert(
        cert_id,
        bytes(der),
        time_of(created_at),
        key_secret,
        CaState(state) if state else CaState.TRUSTED,
        time_or_none(state_at),
    )


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
        cas=tuple(_ca(r) for r in rows if r[9] is not None),
        active_ca=active_ca,
        created_at=time_of(created_at),
        modified_at=time_of(modified_at),
        version=version,
    )


_PARSED_SIZE = 4096  # tenants whose parsed record is kept beside the rows it was made from


class SqliteTenants:
    def __init__(self, db: Database) -> None:
        self._db = db
        # The rows last read per tenant and the Tenant made of them: every enrolment's commit empties
        # the read memo, but the tenant's rows rarely change, and parsing them (the configuration's
        # JSON, the CA list) costs several times the query. Same rows, same record.
        self._parsed: dict[str, tuple[list[Any], Tenant | None]] = {}

    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None:
        memo = self._db.read_memo()  # always consistent: emptied by any commit since the read
        key = ("tenant", tenant_id)
        if key in memo:
            return memo[key]  # type: ignore[no-any-return]
        with self._db.read() as conn:
            rows = conn.execute(_GET, (tenant_id,)).fetchall()
        parsed = self._parsed.get(tenant_id)
        if parsed is not None and parsed[0] == rows:
            found = parsed[1]
        else:
            found = _tenant(rows)
            if len(self._parsed) >= _PARSED_SIZE:
                self._parsed.clear()
            self._parsed[tenant_id] = (rows, found)
        memo[key] = found
        return found

    def ids(self) -> list[str]:
        with self._db.read() as conn:
            return [str(row[0]) for row in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]

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

    def add_ca(
        self, tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = (), *, key_secret: str | None = None
    ) -> None:
        """Store a new CA certificate (over the key in ``key_secret``; None: the tenant's first key) and
        make it the tenant's active CA, atomically."""
        stale = f"tenant {tenant.tenant_id} was changed concurrently, retry"
        with self._db.write(stale) as conn:
            changed = conn.execute(
                _SET_ACTIVE_CA, (record.cert_id, text(record.created_at), tenant.tenant_id, tenant.version)
            ).rowcount
            if changed != 1:
                raise Conflict(stale)
            insert_certificate(conn, record)  # a certificate id in use: Conflict
            conn.execute(_ADD_CA, (tenant.tenant_id, record.cert_id, key_secret, tenant.tenant_id))
            insert_events(self._db, conn, audit)

    def set_ca_states(
        self,
        tenant: Tenant,
        states: Mapping[str, CaState],
        audit: Sequence[Any] = (),
        *,
        final_crls: Mapping[str, bytes] | None = None,
    ) -> Tenant:
        """Retire or revoke CA certificates and store the final CRLs given, in one transaction guarded
        by the version read (the CA list it checks is then the one read)."""
        if not set(states.values()) <= _STORED_STATES:
            raise ValueError("the active state is never stored: it is the tenant's active_ca")
        stale = f"tenant {tenant.tenant_id} was changed concurrently, retry"
        crls = dict(final_crls or {})
        with self._db.write(stale) as conn:
            at = now()
            moved = conn.execute(
                _MOVE_ON, (tenant.active_ca in states, text(at), tenant.tenant_id, tenant.version)
            ).rowcount
            if moved != 1:
                raise Conflict(stale)
            known = {row[0] for row in conn.execute(_CA_IDS, (tenant.tenant_id,))}
            if not set(states) <= known or not set(crls) <= known:
                raise Conflict(f"tenant {tenant.tenant_id} has no such CA certificate")  # rolls back
            conn.executemany(
                _SET_STATE, [(str(state), text(at), tenant.tenant_id, cert_id) for cert_id, state in states.items()]
            )
            for cert_id, der in crls.items():
                if not set_final_crl(conn, tenant.tenant_id, cert_id, der, at):
                    raise Conflict(f"tenant {tenant.tenant_id} has no such CA certificate")
            insert_events(self._db, conn, audit)
            fresh = _tenant(conn.execute(_GET, (tenant.tenant_id,)).fetchall())
        assert fresh is not None
        return fresh
