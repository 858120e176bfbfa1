"""Response shapes. Metadata follows the reference documentation's storage form (``_id``, ``_c``,
``_m``, ``_v``, ``type``, ``family``, ``tenant``, ``label``, ``data``)."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain import CertificateRecord, IdentityRecord, RequestKind, RequestRecord
from chalicelib.service.ids import json_time, naive_iso


def certificate_meta(record: CertificateRecord) -> dict[str, object]:
    from cryptography import x509  # lazily: keeps `import app` off cryptography's X.509 stack

    cert = x509.load_der_x509_certificate(record.der)
    now = datetime.now(UTC)
    status = "revoked" if record.revoked_at else ("expired" if record.not_after <= now else "valid")
    subject = cert.subject.rfc4514_string()
    meta: dict[str, object] = {
        "_id": record.cert_id,
        "_c": naive_iso(record.created_at),
        "_m": naive_iso(record.modified_at),
        "_v": record.version,
        "type": "cert",
        "family": "seacat" if record.kind == "seacat" else "x509",
        "tenant": record.tenant_id,
        "id": f"{record.tenant_id}:{record.cert_id}",
        "label": f"{record.identity}" if record.identity and record.kind == "seacat" else subject,
        "data": record.der.hex(),
        "ca": record.kind == "ca",
        "serialNumber": format(record.serial, "x"),
        "subject": subject,
        "issuer": cert.issuer.rfc4514_string(),
        "notBefore": json_time(record.not_before),
        "notAfter": json_time(record.not_after),
        "status": status,
        "revoked": (
            {"at": json_time(record.revoked_at), "reason": record.revocation_reason} if record.revoked_at else None
        ),
    }
    if record.identity and record.kind == "seacat":
        meta["seacat_identity"] = record.identity
        meta["issuer_ca"] = f"{record.tenant_id}:{record.ca_id}" if record.ca_id else None
        meta["cr"] = record.cr_id
    elif record.identity:  # from a CSR: its key's identity (listed, blocked, revoked as a SeaCat one's)
        meta["identity"] = record.identity
        meta["issuer_ca"] = f"{record.tenant_id}:{record.ca_id}" if record.ca_id else None
        meta["request"] = record.cr_id
    return meta


def request_meta(record: RequestRecord, certificate: CertificateRecord | None = None) -> dict[str, object]:
    if record.kind == RequestKind.CSR:
        return _csr_meta(record, certificate)
    info: dict[str, object] = {"application": record.application, "identity": record.identity}
    if record.attributes:
        info["attributes"] = [list(a) for a in record.attributes]
    return {
        "_id": record.cr_id,
        "_c": naive_iso(record.created_at),
        "_m": naive_iso(record.modified_at),
        "_v": record.version,
        "data": record.der.hex(),
        "family": "seacat",
        "info": info,
        "label": f"{record.identity} ({record.application})",
        "seacat_application": record.application,
        "seacat_identity": record.identity,
        "tenant": record.tenant_id,
        "type": "cr",
        "state": record.state,
        "reason": record.reason,
        "createdAtRaw": record.created_raw,
        "validToRaw": record.valid_to_raw,
        "certificate": f"{record.tenant_id}:{record.cert_id}" if record.cert_id else None,
        "certificateRevoked": (
            {"at": json_time(certificate.revoked_at), "reason": certificate.revocation_reason}
            if certificate is not None and certificate.revoked_at
            else None
        ),
        "decidedBy": record.decided_by,
    }


def _revocation(certificate: CertificateRecord | None) -> dict[str, object] | None:
    if certificate is None or certificate.revoked_at is None:
        return None
    return {"at": json_time(certificate.revoked_at), "reason": certificate.revocation_reason}


def _csr_meta(record: RequestRecord, certificate: CertificateRecord | None) -> dict[str, object]:
    """A PKCS#10 CSR's request: the same shape as a CR's, ``type`` "csr" and the CSR's details in ``info``."""
    from chalicelib.ca.csr import describe_request

    info: dict[str, object] = {"profile": record.profile, "identity": record.identity, **describe_request(record.der)}
    return {
        "_id": record.cr_id,
        "_c": naive_iso(record.created_at),
        "_m": naive_iso(record.modified_at),
        "_v": record.version,
        "data": record.der.hex(),
        "family": "x509",
        "info": info,
        "label": f"{info.get('subject') or record.identity} ({record.profile})",
        "profile": record.profile,
        "identity": record.identity,
        "tenant": record.tenant_id,
        "type": "csr",
        "state": record.state,
        "reason": record.reason,
        "certificate": f"{record.tenant_id}:{record.cert_id}" if record.cert_id else None,
        "certificateRevoked": _revocation(certificate),
        "decidedBy": record.decided_by,
    }


def identity_json(record: IdentityRecord) -> dict[str, object]:
    return {
        "identity": record.identity,
        "tenant": record.tenant_id,
        "application": record.application,
        "approved": record.approved,
        "blocked": record.blocked,
        "revoked": (
            {"at": json_time(record.revoked_at), "reason": record.revocation_reason} if record.revoked_at else None
        ),
        "certificate": f"{record.tenant_id}:{record.cert_id}" if record.cert_id else None,
        "notAfter": json_time(record.cert_not_after),
        "certificates": record.certificates,
        "_c": naive_iso(record.created_at),
        "_m": naive_iso(record.modified_at),
        "_v": record.version,
    }
