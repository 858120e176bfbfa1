"""Tenants and their CA certificate list in DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.domain import CaCert, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict
from chalicelib.store import common
from chalicelib.store.models import CaEntry, CertificateModel, TenantModel


def _to_domain(item: TenantModel) -> Tenant:
    return Tenant(
        tenant_id=item.tenant_id,
        config=TenantConfig.from_json(item.config or {}),
        key_secret=item.key_secret,
        key_fingerprint=item.key_fingerprint,
        key_imported=bool(item.key_imported),
        cas=tuple(CaCert(cert_id=c.cert_id, der=bytes(c.der), created_at=c.created_at) for c in item.cas or []),
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


def add_ca(tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = ()) -> None:
    """Store a new CA certificate and make it the tenant's active CA, atomically."""
    from chalicelib.store.certificates import certificate_item

    ca_item = certificate_item(record)
    created_at = record.created_at
    common.ready()
    entry = CaEntry(cert_id=ca_item.cert_id, der=ca_item.der, created_at=created_at)
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
