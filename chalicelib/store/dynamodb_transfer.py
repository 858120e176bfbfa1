"""``TransferStore`` on the stage's DynamoDB tables (chalicelib/store/transfer.py), for the transfer tool.

Reading a tenant scans the certificates, identities and requests tables for its items (their keys
start with the tenant, but a key is a hash key: only a scan finds them all) and queries its 8 audit
shards. Scans are not in the service role's policy: run the tool with credentials of your own. There
is no snapshot: export from a deployment nobody writes to meanwhile.

``put`` writes each item with a ``PutItem`` conditioned on its key being free, the item exactly as
the record says (versions and times kept, where the service's own writes would move the version);
a key in use is read back and compared. An audit event goes to the shard its event id names, so an
event written twice lands on the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.models import Model

from chalicelib.domain import AuditEvent, CertificateRecord, IdentityRecord, RequestRecord, Tenant
from chalicelib.store import audit as audit_store
from chalicelib.store import certificates, common, tenants
from chalicelib.store.keys import RETENTION, sort_key
from chalicelib.store.models import AuditModel, CertificateModel, IdentityModel, RequestModel, TenantModel
from chalicelib.store.transfer import Outcome, Record, SerialClaim

WORKERS = 8  # PutItems in flight


def _shard(event_id: str) -> int:
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:4], "big") % audit_store.SHARDS


def _audit_pk(tenant: str | None, event_id: str) -> str:
    return f"{tenant or audit_store.GLOBAL}#{_shard(event_id):x}"


class DynamoDbTransfer:
    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = max(1, workers)

    def tenant_ids(self) -> list[str]:
        common.ready()
        with common.translated():
            return sorted(t.tenant_id for t in TenantModel.scan(consistent_read=True, attributes_to_get=["tenant_id"]))

    def tenant(self, tenant_id: str) -> Tenant | None:
        return tenants.get(tenant_id)

    def records(self, tenant_id: str, *, audit: bool) -> Iterator[Record]:
        tenant = tenants.get(tenant_id)
        if tenant is None:
            return
        yield tenant
        common.ready()
        with common.translated():
            claims: list[SerialClaim] = []
            for item in CertificateModel.scan(CertificateModel.tenant_id == tenant_id, consistent_read=True):
                if item.kind == "serial":
                    # pk {tenant}#serial#{hex}
                    claims.append(SerialClaim(tenant_id, int(item.pk.rsplit("#", 1)[1], 16), item.cert_id or ""))
                else:
                    yield certificates._cert_to_domain(item)
            yield from sorted(claims, key=lambda c: c.serial)
            for identity in IdentityModel.scan(IdentityModel.tenant_id == tenant_id, consistent_read=True):
                yield certificates._identity_to_domain(identity)
            for request in RequestModel.scan(RequestModel.tenant_id == tenant_id, consistent_read=True):
                yield certificates._request_to_domain(request)
            if audit:
                yield from self._audit(tenant_id)

    def _audit(self, tenant_id: str) -> Iterator[AuditEvent]:
        alive = common.now()
        events: list[AuditModel] = []
        for shard in range(audit_store.SHARDS):
            for item in AuditModel.query(f"{tenant_id}#{shard:x}", consistent_read=True):
                if item.expires_at is None or item.expires_at > alive:
                    events.append(item)
        for item in sorted(events, key=lambda e: e.sk):
            yield audit_store._to_event(item)

    # -- writing ---------------------------------------------------------------------------------

    def put(self, records: Sequence[Record]) -> list[Outcome]:
        common.ready()
        if self.workers == 1 or len(records) < 2:
            return [self._put(r) for r in records]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="transfer") as pool:
            return list(pool.map(self._put, records))

    def _put(self, record: Record) -> Outcome:
        item, read = _item(record)
        with common.translated():
            if _put_new(item):
                return Outcome.WRITTEN
            return Outcome.SAME if read() == record else Outcome.DIFFERS


def _put_new(item: Model) -> bool:
    """PutItem of ``item`` exactly as it is, if its key is free: True; False if an item has that key."""
    attributes = item.serialize()
    hash_attr = item._hash_key_attribute()
    hash_key = attributes.pop(hash_attr.attr_name)[hash_attr.attr_type]
    range_attr = item._range_key_attribute()
    range_key = attributes.pop(range_attr.attr_name)[range_attr.attr_type] if range_attr else None
    try:
        type(item)._get_connection().put_item(
            hash_key, range_key=range_key, attributes=attributes, condition=hash_attr.does_not_exist()
        )
    except PutError as exc:
        if common.is_conditional_failure(exc):
            return False
        raise
    return True


def _get(model: type[Model], hash_key: str, range_key: str | None = None) -> Any:
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except DoesNotExist:
        return None


def _item(record: Record) -> tuple[Model, Any]:
    """The item that stores ``record``, and how to read back what its key holds (as a record)."""
    if isinstance(record, CertificateRecord):
        cert = certificates.certificate_item(record)
        return cert, lambda: _maybe(certificates._cert_to_domain, _get(CertificateModel, cert.pk))
    if isinstance(record, SerialClaim):
        at = common.now()
        claim = CertificateModel(
            certificates._serial_pk(record.tenant_id, record.serial),
            kind="serial",
            tenant_id=record.tenant_id,
            cert_id=record.cert_id,
            created_at=at,
            modified_at=at,
        )

        def read_claim() -> SerialClaim | None:
            stored = _get(CertificateModel, claim.pk)
            if stored is None or stored.kind != "serial":
                return None
            return SerialClaim(stored.tenant_id, record.serial, stored.cert_id)

        return claim, read_claim
    if isinstance(record, IdentityRecord):
        identity = certificates._identity_item(record)
        identity.version = record.version  # as stored, not as the next write would make it
        return identity, lambda: _maybe(certificates._identity_to_domain, _get(IdentityModel, identity.pk))
    if isinstance(record, RequestRecord):
        request = certificates._request_item(record)
        request.version = record.version
        return request, lambda: _maybe(certificates._request_to_domain, _get(RequestModel, request.pk))
    if isinstance(record, AuditEvent):
        event = AuditModel(
            _audit_pk(record.tenant, record.event_id),
            sort_key(record.at, record.event_id),
            tenant_id=record.tenant,
            event=record.event,
            actor=record.actor,
            subject=record.subject,
            outcome=record.outcome,
            details=record.details,
            expires_at=record.at + RETENTION,
        )
        return event, lambda: _maybe(audit_store._to_event, _get(AuditModel, event.pk, event.sk))
    if isinstance(record, Tenant):
        tenant = TenantModel(
            record.tenant_id,
            config=record.config.to_json(),
            key_secret=record.key_secret,
            key_fingerprint=record.key_fingerprint,
            key_imported=record.key_imported,
            cas=[tenants._ca_entry(ca) for ca in record.cas],  # each with its key secret, state and state_at
            active_ca=record.active_ca,
            created_at=record.created_at,
            modified_at=record.modified_at,
            version=record.version,
        )
        return tenant, lambda: _maybe(tenants._to_domain, _get(TenantModel, record.tenant_id))
    raise TypeError(f"not a record: {type(record).__name__}")


def _maybe(convert: Any, item: Any) -> Any:
    return None if item is None else convert(item)
