"""The tenant's OCSP responder (RFC 6960, RFC 5019 profile): the status of a certificate by issuer and
serial, signed by a delegated responder certificate per CA certificate.

The status is read from the store at every request (the serial claim and the certificate record,
strong reads), never from a cache: a revocation changes the answer at once at the origin. What is
kept in the container is only what cannot change a status: the tenant (its CA states within
SEACAT_TENANT_CACHE_SECONDS, as every hot path reads it), each CA certificate's issuer hashes, and the
responder certificates with their keys (each valid until its notAfter whoever re-issued it).

Responder certificates live in the key store, encrypted like the CA keys, one tenant secret per CA
certificate (``ocsp-signer-<first 16 hex of the CA certificate id>``: its certificate and key), and
are re-issued with the CA key when fewer than RENEW_BEFORE of their lifetime is left: on demand by the
first request that finds one so, or ahead of time by ``ensure_signers`` (a scheduled upkeep job).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.ca import ocsp
from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import CaCert, CaState, CertificateKind, Tenant
from chalicelib.errors import PkiError, Unavailable

log = logging.getLogger("seacat.ocsp")

SIGNER_LIFETIME = timedelta(days=7)
# Re-issued on demand when fewer than this is left; ensure_signers re-issues earlier (UPKEEP_RENEW_BEFORE),
# so with a daily upkeep job no request ever waits for a signature by the CA key.
RENEW_BEFORE = timedelta(days=2)
UPKEEP_RENEW_BEFORE = timedelta(days=4)
# A revoked CA certificate's revocation reason is not stored on it; its key is compromised by definition.
CA_REVOKED_REASON = "cACompromise"

_issue_lock = threading.Lock()  # one re-issue at a time in a container, not one per concurrent request


@dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


@dataclass(frozen=True)
class Result:
    der: bytes  # the OCSPResponse
    status: str  # good, revoked, unknown, or the unsuccessful response status (malformedRequest ...)
    next_update: datetime | None = None  # successful responses only
    this_update: datetime | None = None
    nonce: bool = False


def signer_kind(ca_id: str) -> str:
    return f"ocsp-signer-{ca_id[:16]}"


def respond(tenant_id: str, request_der: bytes) -> Result:
    """The OCSPResponse for one DER request. Never raises for the caller's input: a request it cannot
    read is malformedRequest, a tenant it does not know unauthorized; a store or key store fault is
    tryLater (retryable), anything else internalError (logged)."""
    try:
        request = ocsp.parse_request(request_der)
    except ocsp.Malformed as exc:
        log.info("OCSP request refused: %s", exc)
        return Result(ocsp.unsuccessful(ocsp.MALFORMED), "malformedRequest")
    try:
        return _respond(tenant_id, request)
    except Unavailable:
        return Result(ocsp.unsuccessful(ocsp.TRY_LATER), "tryLater")
    except PkiError as exc:
        log.warning("OCSP: %s", exc)
        return Result(ocsp.unsuccessful(ocsp.TRY_LATER), "tryLater")
    except Exception:
        log.exception("OCSP responder fault")
        return Result(ocsp.unsuccessful(ocsp.INTERNAL_ERROR), "internalError")


def _respond(tenant_id: str, request: ocsp.Request) -> Result:
    from chalicelib.service.tenants import cached_tenant
    from chalicelib.settings import get_settings

    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.cas:
        return Result(ocsp.unsuccessful(ocsp.UNAUTHORIZED), "unauthorized")
    cert_id = request.cert_id
    group = _issuers(tenant, cert_id)
    answer, by = _status(tenant, group, cert_id.serial)
    signer = _usable_signer(tenant, by) if by is not None else None
    if signer is None:
        # No CA certificate of the tenant that can still sign for this issuer (a retired or revoked CA
        # whose key is gone and whose last responder certificate expired, or none at all).
        return Result(ocsp.unsuccessful(ocsp.UNAUTHORIZED), "unauthorized")
    now = datetime.now(UTC).replace(microsecond=0)
    validity = timedelta(seconds=get_settings().ocsp_validity_seconds)
    next_update = min(now + validity, signer.not_after)
    der = ocsp.build_response(
        request, answer, signer=signer.certificate, signer_key=signer.key, this_update=now, next_update=next_update
    )
    return Result(der, str(answer.status), next_update, now, request.nonce is not None)


def _issuers(tenant: Tenant, cert_id: ocsp.CertId) -> list[CaCert]:
    """The tenant's CA certificates with the request's issuer name and key hash (a CA certificate and
    its re-certifications under the same name and key), in the tenant's order."""
    from chalicelib.service.issuing import ca_certificate

    cache = current().caches.ocsp_issuers
    found = []
    for ca in tenant.cas:
        key = (ca.cert_id, cert_id.algorithm)
        hashes = cache.get(key)
        if isinstance(hashes, Missing):
            hashes = ocsp.issuer_hashes(ca_certificate(ca.cert_id, ca.der), cert_id.algorithm)
            cache.put(key, hashes)
        if hashes == (cert_id.issuer_name_hash, cert_id.issuer_key_hash):
            found.append(ca)
    return found


def _status(tenant: Tenant, group: list[CaCert], serial: int) -> tuple[ocsp.Answer, CaCert | None]:
    """The answer, and the CA certificate whose responder signs it (None: none can)."""
    if not group:
        # Not an issuer of this tenant: unknown (RFC 6960 §2.2), signed by the active CA's responder.
        return ocsp.Answer(ocsp.Status.UNKNOWN), tenant.active_ca_cert()
    record = current().certificates.get_certificate_by_serial(tenant.tenant_id, serial)
    ids = {ca.cert_id for ca in group}
    signer_ca = _signing_ca(tenant, group)
    if record is None:
        return ocsp.Answer(ocsp.Status.UNKNOWN), signer_ca
    if record.kind == CertificateKind.CA:
        issuer = tenant.ca(record.cert_id) if record.cert_id in ids else None  # self-signed: its own issuer
    elif record.ca_id is None or record.ca_id in ids:
        issuer = tenant.ca(record.ca_id) if record.ca_id else signer_ca
    else:
        return ocsp.Answer(ocsp.Status.UNKNOWN), signer_ca  # that serial, but under another issuer
    if issuer is None:
        return ocsp.Answer(ocsp.Status.UNKNOWN), signer_ca
    if issuer.state == CaState.REVOKED:  # its key is compromised: everything it issued is revoked
        return ocsp.Answer(ocsp.Status.REVOKED, issuer.state_at or issuer.created_at, CA_REVOKED_REASON), signer_ca
    if record.revoked_at is not None:
        return ocsp.Answer(ocsp.Status.REVOKED, record.revoked_at, record.revocation_reason), signer_ca
    return ocsp.Answer(ocsp.Status.GOOD), signer_ca


def _signing_ca(tenant: Tenant, group: list[CaCert]) -> CaCert:
    """Of CA certificates with one name and key, the one whose responder signs: one in trust (its key
    is there to re-issue), else the newest."""
    in_trust = [ca for ca in group if ca.in_trust]
    return (in_trust or group)[-1]


@dataclass(frozen=True)
class _NoSigner:
    """A CA certificate that could not have a responder (retired with its key gone, revoked with its last
    one expired), remembered a while so that requests about it do not each go to the key store."""

    until: float


NO_SIGNER_SECONDS = 60.0


def _usable_signer(tenant: Tenant, ca: CaCert) -> Signer | None:
    """A responder certificate for ``ca`` valid now: kept, stored, or re-issued with the CA key once
    fewer than RENEW_BEFORE of it is left. None when none is valid and the CA key cannot sign one."""
    now = datetime.now(UTC)
    kept = current().caches.ocsp_signers.get((tenant.tenant_id, ca.cert_id))
    if isinstance(kept, Signer) and kept.not_after - now > RENEW_BEFORE:
        return kept
    if isinstance(kept, _NoSigner) and time.monotonic() < kept.until:
        return None
    return _refresh(tenant, ca, now, RENEW_BEFORE)


def _refresh(tenant: Tenant, ca: CaCert, now: datetime, renew_before: timedelta) -> Signer | None:
    cache = current().caches.ocsp_signers
    key = (tenant.tenant_id, ca.cert_id)
    with _issue_lock:
        stored = _load(tenant.tenant_id, ca)
        if stored is not None and stored.not_after - now > renew_before:
            cache.put(key, stored)
            return stored
        still_valid = stored if stored is not None and stored.not_after > now + timedelta(minutes=1) else None
        try:
            fresh = _issue(tenant, ca, now)
        except Unavailable:
            if still_valid is None:
                raise  # tryLater
            log.warning("OCSP responder of CA certificate %s not re-issued (key store unavailable)", ca.cert_id)
            return still_valid  # not kept: the next request tries again
        best = fresh or still_valid
        cache.put(key, best if best is not None else _NoSigner(time.monotonic() + NO_SIGNER_SECONDS))
        return best


def _load(tenant_id: str, ca: CaCert) -> Signer | None:
    raw = current().keystore.load_secret(tenant_id, signer_kind(ca.cert_id))
    if raw is None:
        return None
    try:
        stored = json.loads(raw)
        certificate = x509.load_der_x509_certificate(base64.b64decode(stored["certificate"]))
        key = serialization.load_der_private_key(base64.b64decode(stored["key"]), password=None)
    except (ValueError, KeyError, TypeError):
        log.error("the OCSP responder secret of CA certificate %s cannot be read: re-issuing it", ca.cert_id)
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _issued_by(certificate, ca):
        return None  # not this CA's (a 16-hex prefix clash, or a re-keyed entry): re-issue
    return Signer(certificate, key)


def _issued_by(certificate: x509.Certificate, ca: CaCert) -> bool:
    from chalicelib.service.issuing import ca_certificate

    try:
        certificate.verify_directly_issued_by(ca_certificate(ca.cert_id, ca.der))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issue(tenant: Tenant, ca: CaCert, now: datetime) -> Signer | None:
    """A new responder certificate signed with ``ca``'s key, stored (replacing the previous one) before
    it is used. None when the CA may not or cannot sign: revoked, key scheduled for deletion or gone."""
    from chalicelib.ca.keys import curve_name, generate_ca_key
    from chalicelib.service import audit
    from chalicelib.service.issuing import ca_certificate

    if ca.state == CaState.REVOKED:
        return None  # never use a compromised key again
    issuer = ca_certificate(ca.cert_id, ca.der)
    if issuer.not_valid_after_utc <= now + timedelta(minutes=5):
        return None
    context = current()
    if ca.in_trust:
        issuer_key = context.keystore.load(tenant.key_of(ca))  # a fault here is tryLater
    else:
        try:  # a retired CA's key may be scheduled for deletion or gone: then it signs no more
            issuer_key = context.keystore.load(tenant.key_of(ca))
        except Exception:
            return None
    key = generate_ca_key(curve_name(issuer_key))
    certificate = ocsp.build_signer(issuer=issuer, issuer_key=issuer_key, key=key, now=now, lifetime=SIGNER_LIFETIME)
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    value = json.dumps(
        {
            "certificate": base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode(),
            "key": base64.b64encode(der_key).decode(),
        }
    ).encode()
    context.keystore.put_secret(tenant.tenant_id, signer_kind(ca.cert_id), value, replace=True)
    audit.record(
        "ocsp.signer_issued",
        tenant.tenant_id,
        ca.cert_id,
        "issued",
        {"serial": format(certificate.serial_number, "x"), "notAfter": certificate.not_valid_after_utc.isoformat()},
    )
    return Signer(certificate, key)


@dataclass(frozen=True)
class SignerState:
    ca_id: str
    state: str  # the CA certificate's state
    not_after: datetime | None  # the responder certificate's; None: there is none and none can be made
    renewed: bool


def ensure_signers(tenant_id: str) -> list[SignerState]:
    """Upkeep (a scheduled job calls it, say daily): every CA certificate of the tenant that can sign
    gets a responder certificate with more than UPKEEP_RENEW_BEFORE left, re-issued if needed. A CA
    certificate that cannot sign any more (revoked, or retired with its key gone) is reported with the
    responder certificate it has, if any. Raises NotFound for an unknown tenant."""
    from chalicelib.service.tenants import get_tenant

    return _ensure(get_tenant(tenant_id), datetime.now(UTC))


def _ensure(tenant: Tenant, now: datetime) -> list[SignerState]:
    states = []
    for ca in tenant.cas:
        before = _load(tenant.tenant_id, ca)
        signer = before
        if ca.state != CaState.REVOKED and (before is None or before.not_after - now <= UPKEEP_RENEW_BEFORE):
            signer = _refresh(tenant, ca, now, UPKEEP_RENEW_BEFORE)
        renewed = signer is not None and (before is None or signer.certificate != before.certificate)
        states.append(SignerState(ca.cert_id, str(tenant.state_of(ca)), signer.not_after if signer else None, renewed))
    return states


def upkeep_task(tenant: Tenant, now: datetime) -> float | None:
    """The hourly upkeep's task (chalicelib/jobs/upkeep.py, ``TENANT_TASKS["ocsp_signers"]``): ensure the
    tenant's responders, then the whole days left on the shortest-lived one of a CA certificate in trust
    (active or trusted: those must never lapse; a retired or revoked one's is let run out), or None."""
    import math

    left = [
        (s.not_after - now).total_seconds() / 86400
        for s in _ensure(tenant, now)
        if s.not_after is not None and s.state in (CaState.ACTIVE, CaState.TRUSTED)
    ]
    in_trust = sum(1 for ca in tenant.cas if ca.in_trust)
    if len(left) < in_trust:
        return 0.0  # a CA certificate in trust without a responder: as urgent as one that expired
    return float(math.floor(min(left))) if left else None


def responder_certificate(tenant_id: str, ca_id: str) -> x509.Certificate | None:
    """The responder certificate stored for a CA certificate (tests, operations), or None."""
    from chalicelib.service.tenants import get_tenant

    ca = get_tenant(tenant_id).ca(ca_id)
    signer = _load(tenant_id, ca) if ca is not None else None
    return signer.certificate if signer else None
