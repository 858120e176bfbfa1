"""Tenants and their CA certificate list in DynamoDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.domain import CaCert, CaState, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict
from chalicelib.store import common
from chalicelib.store.models import CaEntry, CertificateModel, TenantModel


def _ca_to_domain(entry: CaEntry) -> CaCert:
    # Entries written before CA keys could be rotated have neither a key nor a state: the tenant's
    # key, and trusted (the one the tenant's active_ca names is the active one).
    return CaCert(
        cert_id=entry.cert_id,
        der=bytes(entry.der),
        created_at=entry.created_at,
        key_secret=entry.key_secret or None,
        state=CaState(entry.state) if entry.state else CaState.TRUSTED,
        state_at=entry.state_at,
    )


def _ca_entry(ca: CaCert) -> CaEntry:
    return CaEntry(
        cert_id=ca.cert_id,
        der=ca.der,
        created_at=ca.created_at,
        key_secret=ca.key_secret,
        state=str(ca.state),
        state_at=ca.state_at,
    )


def _to_domain(item: TenantModel) -> Tenant:
    return Tenant(
        tenant_id=item.tenant_id,
        config=TenantConfig.from_json(item.config or {}),
        key_secret=item.key_secret,
        key_fingerprint=item.key_fingerprint,
        key_imported=bool(item.key_imported),
        cas=tuple(_ca_to_domain(c) for c in item.cas or []),
        active_ca=item.active_ca,
        created_at=item.created_at,
        modified_at=item.modified_at,
        version=int(item.version or 0),
    )


def get(tenant_id: str, *, consistent: bool = True) -> Tenant | None:
    common.ready()
    with common.translated():
        try:
            return _to_domain(TenantModel.get(tenant_id, consistent_read=consistent))
        except DoesNotExist:
            return None


def ids() -> list[str]:
    # A scan of the key alone (the operator's list; tenants are few, the table is small).
    common.ready()
    with common.translated():
        return sorted(t.tenant_id for t in TenantModel.scan(consistent_read=True, attributes_to_get=["tenant_id"]))


def create(
    tenant_id: str,
    config: TenantConfig,
    key_secret: str,
    key_fingerprint: str,
    imported: bool,
    audit: Sequence[Any] = (),
) -> Tenant:
    common.ready()
    now = common.now()
    item = TenantModel(
        tenant_id,
        config=config.to_json(),
        key_secret=key_secret,
        key_fingerprint=key_fingerprint,
        key_imported=imported,
        cas=[],
        active_ca=None,
        created_at=now,
        modified_at=now,
    )
    with common.translated(f"tenant {tenant_id} was created concurrently"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(item, condition=TenantModel.tenant_id.does_not_exist())
            common.save_all(tx, audit)
    item.version = 1
    return _to_domain(item)


def update_config(tenant: Tenant, config: TenantConfig, audit: Sequence[Any] = ()) -> Tenant:
    """Replace the configuration, guarded by the version the caller read."""
    common.ready()
    item = TenantModel(tenant.tenant_id)
    item.version = tenant.version
    with common.translated(f"tenant {tenant.tenant_id} was changed concurrently, retry"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(
                item, actions=[TenantModel.config.set(config.to_json()), TenantModel.modified_at.set(common.now())]
            )
            common.save_all(tx, audit)
    fresh = get(tenant.tenant_id)
    if fresh is None:  # deleted between the two calls: nothing in this API deletes tenants
        raise Conflict(f"tenant {tenant.tenant_id} disappeared")
    return fresh


def add_ca(
    tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = (), *, key_secret: str | None = None
) -> None:
    """Store a new CA certificate (over the key in ``key_secret``; None: the tenant's first key) and make
    it the tenant's active CA, atomically."""
    from chalicelib.store.certificates import certificate_item

    ca_item = certificate_item(record)
    created_at = record.created_at
    common.ready()
    entry = _ca_entry(CaCert(record.cert_id, record.der, created_at, key_secret))
    tenant_item = TenantModel(tenant.tenant_id)
    tenant_item.version = tenant.version
    with common.translated(f"tenant {tenant.tenant_id} was changed concurrently, retry"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(ca_item, condition=CertificateModel.pk.does_not_exist())
            tx.update(
                tenant_item,
                actions=[
                    TenantModel.cas.set(TenantModel.cas.append([entry])),
                    TenantModel.active_ca.set(ca_item.cert_id),
                    TenantModel.modified_at.set(created_at),
                ],
            )
            common.save_all(tx, audit)


def set_ca_states(
    tenant: Tenant,
    states: Mapping[str, CaState],
    audit: Sequence[Any] = (),
    *,
    final_crls: Mapping[str, bytes] | None = None,
) -> Tenant:
    """Retire or revoke CA certificates (and store the final CRLs given), guarded by the version read.

    The whole CA list is written again (the version guard makes the list read the one replaced); the
    final CRLs go on the CA certificates' own items, in the same transaction."""
    from dataclasses import replace

    from chalicelib.store.certificates import cert_pk

    common.ready()
    known = {ca.cert_id for ca in tenant.cas}
    crls = dict(final_crls or {})
    if not set(states) <= known or not set(crls) <= known:
        raise Conflict(f"tenant {tenant.tenant_id} has no such CA certificate")
    now = common.now()
    cas = [replace(ca, state=states[ca.cert_id], state_at=now) if ca.cert_id in states else ca for ca in tenant.cas]
    item = TenantModel(tenant.tenant_id)
    item.version = tenant.version
    actions: list[Any] = [TenantModel.cas.set([_ca_entry(ca) for ca in cas]), TenantModel.modified_at.set(now)]
    if tenant.active_ca in states:
        actions.append(TenantModel.active_ca.remove())
    with common.translated(f"tenant {tenant.tenant_id} was changed concurrently, retry"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(item, actions=actions)
            for cert_id, der in crls.items():
                tx.update(
                    CertificateModel(cert_pk(tenant.tenant_id, cert_id)),
                    actions=[CertificateModel.final_crl.set(der), CertificateModel.modified_at.set(now)],
                    condition=CertificateModel.pk.exists(),
                )
            common.save_all(tx, audit)
    fresh = get(tenant.tenant_id)
    if fresh is None:  # nothing in this API deletes tenants
        raise Conflict(f"tenant {tenant.tenant_id} disappeared")
    return fresh
