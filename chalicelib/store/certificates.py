"""Certificates, SeaCat identities and certificate requests in DynamoDB.

Every key starts with the tenant id, and every lookup takes the tenant first: a tenant can never
address another tenant's item. Issuance is one transaction (certificate, serial claim, identity,
request), so a certificate is either stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.domain import (
    CertificateKind,
    CertificateRecord,
    IdentityRecord,
    RequestKind,
    RequestRecord,
    RequestState,
)
from chalicelib.store import common
from chalicelib.store.models import CertificateModel, IdentityModel, RequestModel


def cert_pk(tenant_id: str, cert_id: str) -> str:
    return f"{tenant_id}#{cert_id}"


def _serial_pk(tenant_id: str, serial: int) -> str:
    return f"{tenant_id}#serial#{serial:x}"


def _identity_pk(tenant_id: str, identity: str) -> str:
    return f"{tenant_id}#{identity}"


def _request_pk(tenant_id: str, cr_id: str) -> str:
    return f"{tenant_id}#{cr_id}"


# -- certificates --------------------------------------------------------------------------------


def certificate_item(record: CertificateRecord) -> CertificateModel:
    return CertificateModel(
        cert_pk(record.tenant_id, record.cert_id),
        kind=record.kind,
        tenant_id=record.tenant_id,
        cert_id=record.cert_id,
        serial=f"{record.serial:x}",
        der=record.der,
        identity=record.identity,
        identity_key=_identity_pk(record.tenant_id, record.identity) if record.identity else None,
        issued_at=common.iso(record.created_at),
        not_before=record.not_before,
        not_after=record.not_after,
        ca_id=record.ca_id,
        cr_id=record.cr_id,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
        revoked_key=record.tenant_id if record.revoked_at else None,
        final_crl=record.final_crl,
        created_at=record.created_at,
        modified_at=record.modified_at,
        version=record.version,
    )


def _cert_to_domain(item: CertificateModel) -> CertificateRecord:
    return CertificateRecord(
        tenant_id=item.tenant_id,
        cert_id=item.cert_id or "",
        kind=CertificateKind(item.kind),
        serial=int(item.serial or "0", 16),
        der=bytes(item.der or b""),
        not_before=item.not_before,
        not_after=item.not_after,
        created_at=item.created_at,
        modified_at=item.modified_at,
        version=int(item.version or 1),
        identity=item.identity,
        ca_id=item.ca_id,
        cr_id=item.cr_id,
        revoked_at=item.revoked_at,
        revocation_reason=item.revocation_reason,
        final_crl=bytes(item.final_crl) if item.final_crl is not None else None,
    )


def get_certificate(tenant_id: str, cert_id: str) -> CertificateRecord | None:
    common.ready()
    with common.translated():
        try:
            item = CertificateModel.get(cert_pk(tenant_id, cert_id), consistent_read=True)
        except DoesNotExist:
            return None
    if item.kind == "serial" or item.tenant_id != tenant_id:
        return None
    return _cert_to_domain(item)


def get_certificate_by_serial(tenant_id: str, serial: int) -> CertificateRecord | None:
    """The certificate the tenant issued with this serial: its serial claim names it (two strong reads)."""
    common.ready()
    with common.translated():
        try:
            claim = CertificateModel.get(_serial_pk(tenant_id, serial), consistent_read=True)
        except DoesNotExist:
            return None
    if claim.kind != "serial" or claim.tenant_id != tenant_id or not claim.cert_id:
        return None
    return get_certificate(tenant_id, claim.cert_id)


def list_identity_certificates(
    tenant_id: str, identity: str, *, limit: int, next_token: str | None
) -> tuple[list[CertificateRecord], str | None]:
    common.ready()
    key = _identity_pk(tenant_id, identity)
    start = common.decode_page_token(next_token, {"identity_key": key, "pk": f"{tenant_id}#"})
    with common.translated():
        result = CertificateModel.by_identity.query(
            key, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        items = [_cert_to_domain(i) for i in result]
        return items, common.encode_page_token(result.last_evaluated_key)


# -- identities ----------------------------------------------------------------------------------


def _identity_to_domain(item: IdentityModel) -> IdentityRecord:
    return IdentityRecord(
        tenant_id=item.tenant_id,
        identity=item.identity,
        created_at=item.created_at,
        modified_at=item.modified_at,
        version=int(item.version or 0),
        application=item.application,
        approved=bool(item.approved),
        blocked=bool(item.blocked),
        revoked_at=item.revoked_at,
        revocation_reason=item.revocation_reason,
        revoked_serials=_revoked_serials(item),
        cert_id=item.cert_id,
        cert_serial=_cert_serial(item),
        cert_der=bytes(item.cert_der) if item.cert_der is not None else None,
        cert_not_before=item.cert_not_before,
        cert_not_after=item.cert_not_after,
        certificates=int(item.certificates or 0),
    )


def _cert_serial(item: IdentityModel) -> int | None:
    if item.cert_serial:
        return int(item.cert_serial, 16)
    if item.cert_der is None:
        return None
    # Saved before cert_serial existed (a local run's state): the certificate names it.
    from cryptography import x509

    return int(x509.load_der_x509_certificate(bytes(item.cert_der)).serial_number)


def _revoked_serials(item: IdentityModel) -> frozenset[int]:
    serials = {int(s, 16) for s in item.revoked_serials or ()}
    if item.cert_id and item.cert_id in (item.revoked_certs or ()):
        # Saved before revocation moved to serials: the current certificate's revocation stands.
        # An older certificate revoked then is refused by its own record, which the gateway reads.
        serial = _cert_serial(item)
        if serial is not None:
            serials.add(serial)
    return frozenset(serials)


def _identity_item(record: IdentityRecord) -> IdentityModel:
    item = IdentityModel(
        _identity_pk(record.tenant_id, record.identity),
        tenant_id=record.tenant_id,
        identity=record.identity,
        application=record.application,
        approved=record.approved,
        blocked=record.blocked,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
        revoked_serials={f"{s:x}" for s in record.revoked_serials} or None,
        cert_id=record.cert_id,
        cert_serial=f"{record.cert_serial:x}" if record.cert_serial is not None else None,
        cert_der=record.cert_der,
        cert_not_before=record.cert_not_before,
        cert_not_after=record.cert_not_after,
        certificates=record.certificates,
        created_at=record.created_at,
        modified_at=record.modified_at,
    )
    # The version read decides the write: 0 leaves it unset, meaning "must not exist yet".
    if record.version:
        item.version = record.version
    return item


def get_identity(tenant_id: str, identity: str) -> IdentityRecord | None:
    common.ready()
    with common.translated():
        try:
            return _identity_to_domain(IdentityModel.get(_identity_pk(tenant_id, identity), consistent_read=True))
        except DoesNotExist:
            return None


def save_identity(record: IdentityRecord, audit: Sequence[Any] = ()) -> IdentityRecord:
    """Write an identity guarded by the version it was read at; Conflict if it moved."""
    common.ready()
    item = _identity_item(replace(record, modified_at=common.now()))
    with common.translated(f"identity {record.identity} was changed concurrently, retry"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(item)
            common.save_all(tx, audit)
    return _identity_to_domain(item)


# -- requests ------------------------------------------------------------------------------------


def _request_item(record: RequestRecord) -> RequestModel:
    item = RequestModel(
        _request_pk(record.tenant_id, record.cr_id),
        tenant_id=record.tenant_id,
        cr_id=record.cr_id,
        identity=record.identity,
        application=record.application,
        attributes=[list(a) for a in record.attributes],
        created_raw=record.created_raw,
        valid_to_raw=record.valid_to_raw,
        der=record.der,
        state=record.state,
        reason=record.reason,
        cert_id=record.cert_id,
        pending_key=f"{record.tenant_id}#pending" if record.state == "pending" else None,
        created_at=common.iso(record.created_at),
        modified_at=common.iso(record.modified_at),
        decided_by=record.decided_by,
        kind=str(record.kind) if record.kind != RequestKind.CR else None,
        profile=record.profile,
    )
    item.version = record.version + 1
    return item


def _request_to_domain(item: RequestModel) -> RequestRecord:
    attrs: Any = item.attributes or []
    return RequestRecord(
        tenant_id=item.tenant_id,
        cr_id=item.cr_id,
        identity=item.identity,
        application=item.application,
        der=bytes(item.der),
        state=RequestState(item.state),
        created_at=datetime.fromisoformat(item.created_at.replace("Z", "+00:00")),
        modified_at=datetime.fromisoformat(item.modified_at.replace("Z", "+00:00")),
        version=int(item.version or 0),
        attributes=tuple((str(k), str(v)) for k, v in attrs),
        created_raw=item.created_raw,
        valid_to_raw=item.valid_to_raw,
        reason=item.reason,
        cert_id=item.cert_id,
        decided_by=item.decided_by,
        kind=RequestKind(item.kind or RequestKind.CR),
        profile=item.profile,
    )


def get_request(tenant_id: str, cr_id: str) -> RequestRecord | None:
    common.ready()
    with common.translated():
        try:
            return _request_to_domain(RequestModel.get(_request_pk(tenant_id, cr_id), consistent_read=True))
        except DoesNotExist:
            return None


def save_request(record: RequestRecord, audit: Sequence[Any] = ()) -> RequestRecord:
    """Record a request and its latest outcome (an identical CR sent again is the same request)."""
    common.ready()
    item = _request_item(replace(record, modified_at=common.now()))
    with common.translated("the request was decided concurrently"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(item)
            common.save_all(tx, audit)
    return _request_to_domain(item)


def list_pending(tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[RequestRecord], str | None]:
    common.ready()
    key = f"{tenant_id}#pending"
    start = common.decode_page_token(next_token, {"pending_key": key, "pk": f"{tenant_id}#"})
    with common.translated():
        result = RequestModel.by_pending.query(key, limit=limit, last_evaluated_key=start)
        items = [_request_to_domain(i) for i in result]
        return items, common.encode_page_token(result.last_evaluated_key)


def decide(request: RequestRecord, identity: IdentityRecord, audit: Sequence[Any] = ()) -> None:
    """Apply an approval or rejection: the request and its identity change together or not at all."""
    common.ready()
    now = common.now()
    with common.translated("the request was decided concurrently"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(_request_item(replace(request, modified_at=now)), condition=RequestModel.state == "pending")
            tx.save(_identity_item(replace(identity, modified_at=now)))
            common.save_all(tx, audit)


# -- issuance ------------------------------------------------------------------------------------


def store_issued(
    cert: CertificateRecord, identity: IdentityRecord, request: RequestRecord, audit: Sequence[Any] = ()
) -> None:
    """Store an issued certificate with its serial claim, the identity's new state and the request.

    Conflict when the serial is taken or the identity moved since it was read (a concurrent
    enrolment of the same key): the caller re-reads and answers with the winner's certificate.
    """
    common.ready()
    claim = CertificateModel(
        _serial_pk(cert.tenant_id, cert.serial),
        kind="serial",
        tenant_id=cert.tenant_id,
        cert_id=cert.cert_id,
        created_at=cert.created_at,
        modified_at=cert.created_at,
    )
    request_item = _request_item(request)
    with common.translated("a concurrent request changed this identity"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(certificate_item(cert), condition=CertificateModel.pk.does_not_exist())
            tx.save(claim, condition=CertificateModel.pk.does_not_exist())
            tx.save(_identity_item(identity))
            tx.save(request_item)
            common.save_all(tx, audit)


# -- revocation ----------------------------------------------------------------------------------


def revoke(cert: CertificateRecord, reason: str, identity: IdentityRecord | None, audit: Sequence[Any] = ()) -> None:
    """Mark a certificate revoked, and record it on its identity (what the gateway reads).

    Conflict if it was revoked concurrently; the caller re-reads and answers the recorded state.
    """
    common.ready()
    now = common.now()
    item = CertificateModel(cert_pk(cert.tenant_id, cert.cert_id))
    with common.translated("the certificate was revoked concurrently"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(
                item,
                actions=[
                    CertificateModel.revoked_at.set(now),
                    CertificateModel.revocation_reason.set(reason),
                    CertificateModel.revoked_key.set(cert.tenant_id),
                    CertificateModel.modified_at.set(now),
                    CertificateModel.version.add(1),
                ],
                condition=CertificateModel.pk.exists() & CertificateModel.revoked_at.does_not_exist(),
            )
            if identity is not None:
                # Every other identity write is a whole item guarded by the version it read. With a
                # version on the model, pynamodb's update adds 1 to the stored one (without one it
                # would set it to 1): a write that read before this revocation then fails and
                # retries, instead of putting the revoked certificate back.
                target = IdentityModel(
                    _identity_pk(identity.tenant_id, identity.identity), version=identity.version or 1
                )
                tx.update(
                    target,
                    actions=[
                        IdentityModel.revoked_serials.add({f"{cert.serial:x}"}),
                        IdentityModel.modified_at.set(now),
                    ],
                    condition=IdentityModel.pk.exists(),
                    add_version_condition=False,
                )
            common.save_all(tx, audit)


def iter_revoked(
    tenant_id: str, *, page_size: int | None = None
) -> Iterator[tuple[int, datetime, str, datetime, str | None]]:
    """(serial, revoked at, reason, not after, issuing CA id) of every revoked certificate of the
    tenant, page by page."""
    common.ready()
    with common.translated():
        for item in CertificateModel.by_revoked.query(tenant_id, page_size=page_size):
            assert item.revoked_at is not None and item.not_after is not None
            yield (
                int(item.serial or "0", 16),
                item.revoked_at,
                item.revocation_reason or "unspecified",
                item.not_after,
                item.ca_id,
            )


def count_by_ca(tenant_id: str, ca_id: str, now: datetime) -> int:
    """The tenant's unexpired, unrevoked certificates issued by CA certificate ``ca_id``: one Query of
    ca-index (``ca_id``, ``not_after`` > now) counted by DynamoDB (Select COUNT), page by page."""
    from chalicelib.store.models import CaIndex

    common.ready()
    with common.translated():
        return int(
            CertificateModel.by_ca.count(
                ca_id,
                CaIndex.not_after > now,
                filter_condition=(CertificateModel.tenant_id == tenant_id)
                & CertificateModel.revoked_at.does_not_exist(),
            )
        )
