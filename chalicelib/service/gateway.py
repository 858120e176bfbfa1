"""nginx_authenticate: may this client certificate's identity pass the tenant's gateway?

The hot path of every uncached gateway request. It never calls Secrets Manager or KMS: the
tenant's CA certificates come from the (cached) tenant item, parsed once per container, and the
revocation state is one DynamoDB read of the identity item, or none inside the configurable
revocation-cache window (SEACAT_REVOCATION_CACHE_SECONDS).

Answers only 200, 401 or 403: NGINX's auth_request turns anything else into a 500. A request without
X-SSL-Client-Verify is a 401: NGINX always sends it, so one without it did not come through the
gateway's verification.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from chalicelib import wiring
from chalicelib.domain import IdentityRecord, Tenant
from chalicelib.service.tenants import TENANT_RE
from chalicelib.settings import get_settings

log = logging.getLogger("seacat.gateway")

MAX_PEM = 16 * 1024

# Why path validation refused a certificate, as the response and the audit event say it: short and
# stable. cryptography's own text (internal, and changing between versions) goes to a DEBUG line only.
NOT_ISSUED = "not issued by this tenant's CA"
EXPIRED = "certificate expired"
NOT_YET_VALID = "certificate not yet valid"
CA_NOT_VALID = "this tenant's CA is not valid now"
NOT_CLIENT = "not a client certificate"
NOT_ACCEPTED = "not a valid client certificate for this tenant"


@dataclass(frozen=True)
class Verdict:
    status: int  # 200, 401 or 403
    identity: str | None
    reason: str


@dataclass(frozen=True)
class _Verified:
    identity: str
    cert_id: str
    not_before: datetime
    not_after: datetime


# Path validation (the ECDSA signature check above all) is the cost of this route. Its result is
# kept per exact certificate body and per set of tenant CAs, as TLS stacks cache verifications:
# a certificate seen again (the gateway asks again when its own cache entry expires) skips the
# signature check; its validity period, revocation and block are still checked on every call.
MAX_VERIFIED = 4096
_verified: OrderedDict[tuple[tuple[str, ...], bytes], _Verified] = OrderedDict()
_stores: dict[str, tuple[tuple[str, ...], Any]] = {}
_identities: dict[tuple[str, str], tuple[float, IdentityRecord | None]] = {}
_lock = threading.Lock()


def forget(tenant_id: str | None = None) -> None:
    """Drop cached revocation state (this container's; others expire by their window)."""
    with _lock:
        if tenant_id is None:
            _identities.clear()
            _stores.clear()
            _verified.clear()
        else:
            for key in [k for k in _identities if k[0] == tenant_id]:
                del _identities[key]


def _trust_store(tenant: Tenant) -> Any:
    from chalicelib.ca.verify import trust_store
    from chalicelib.service.enrollment import ca_certificate

    ids = tuple(ca.cert_id for ca in tenant.cas)
    with _lock:
        hit = _stores.get(tenant.tenant_id)
    if hit is not None and hit[0] == ids:
        return hit[1]
    store = trust_store([ca_certificate(ca.cert_id, ca.der) for ca in tenant.cas])
    with _lock:
        _stores[tenant.tenant_id] = (ids, store)
    return store


def _identity_record(tenant_id: str, identity: str) -> IdentityRecord | None:
    store = wiring.certificates()

    window = get_settings().revocation_cache_seconds
    key = (tenant_id, identity)
    now = time.monotonic()
    if window > 0:
        with _lock:
            hit = _identities.get(key)
        if hit is not None and now - hit[0] < window:
            return hit[1]
    record = store.get_identity(tenant_id, identity)
    if window > 0:
        with _lock:
            _identities[key] = (now, record)
    return record


def _rejection_reason(cert: x509.Certificate, tenant: Tenant, now: datetime) -> str:
    """Why path validation refused ``cert``, found by looking at the certificate, not at the library's
    message (runs on refusals only). The first reason that applies: a certificate that none of the
    tenant's CAs signed is that, whatever else is wrong with it; then its validity period, its CA's,
    its kind; NOT_ACCEPTED for what is left (e.g. no authority key identifier, a signature algorithm
    the Web PKI policy forbids, an unknown critical extension)."""
    from chalicelib.service.enrollment import ca_certificate

    issuer: x509.Certificate | None = None
    for ca in tenant.cas:
        candidate = ca_certificate(ca.cert_id, ca.der)
        try:
            cert.verify_directly_issued_by(candidate)  # the issuer's name and its signature
        except Exception:  # ValueError (another issuer), InvalidSignature, TypeError, UnsupportedAlgorithm
            continue
        issuer = candidate
        break
    if issuer is None:
        return NOT_ISSUED
    if now < cert.not_valid_before_utc:
        return NOT_YET_VALID
    if now > cert.not_valid_after_utc:
        return EXPIRED
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        return CA_NOT_VALID
    try:
        if not _is_client_certificate(cert):
            return NOT_CLIENT
    except Exception:  # extensions that do not parse (duplicated, malformed): the verifier's refusal stands
        pass
    return NOT_ACCEPTED


def _is_client_certificate(cert: x509.Certificate) -> bool:
    """False for what the client verifier refuses as the wrong kind of certificate: a CA (basic
    constraints cA, or keyCertSign), or an extended key usage without clientAuth (anyExtendedKeyUsage
    alone included, as the verifier does)."""
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def authenticate(tenant_id: str, body: bytes, ssl_client_verify: str | None) -> Verdict:
    verdict = _decide(tenant_id, body, ssl_client_verify)
    if verdict.status != 200 and body.strip():
        # A certificate was presented and refused: worth an audit event (bare 401s without one are not).
        try:
            from chalicelib.service import audit

            tenant = tenant_id if TENANT_RE.fullmatch(tenant_id) else None
            audit.record(
                "authentication.denied", tenant, verdict.identity, str(verdict.status), {"reason": verdict.reason},
                actor="gateway",
            )
        except Exception:  # the denial stands even if the event cannot be written
            log.warning("could not record a denied authentication")
    return verdict


def _decide(tenant_id: str, body: bytes, ssl_client_verify: str | None) -> Verdict:
    from chalicelib.ca.builder import certificate_id
    from chalicelib.ca.verify import ClientCertificateRejected, verify_client
    from chalicelib.seacat.codec import identity_from_point
    from chalicelib.service.tenants import cached_tenant

    if ssl_client_verify is None:
        # NGINX always sends it (proxy_set_header X-SSL-Client-Verify $ssl_client_verify): a request
        # without it did not pass through the gateway's own verification. Fail closed.
        return Verdict(401, None, "gateway verification: X-SSL-Client-Verify missing")
    if ssl_client_verify.strip() != "SUCCESS":
        # NONE (no certificate) or FAILED:<reason>: NGINX's own verification did not pass.
        return Verdict(401, None, f"gateway verification: {ssl_client_verify.strip()[:80] or 'empty'}")
    if not body.strip():
        return Verdict(401, None, "no client certificate")
    if len(body) > MAX_PEM:
        return Verdict(401, None, "client certificate too large")
    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.cas:
        return Verdict(403, None, "unknown tenant")
    now = datetime.now(timezone.utc)
    cache_key = (tuple(ca.cert_id for ca in tenant.cas), hashlib.sha256(body).digest())
    with _lock:
        seen = _verified.get(cache_key)
        if seen is not None:
            _verified.move_to_end(cache_key)
    if seen is None:
        try:
            # NGINX's $ssl_client_raw_cert is PEM; the older $ssl_client_cert indents lines with tabs.
            pem = body.replace(b"\n\t", b"\n").strip()
            cert = x509.load_pem_x509_certificate(pem) if pem.startswith(b"-----") else x509.load_der_x509_certificate(body)
        except ValueError:
            return Verdict(401, None, "client certificate cannot be parsed")
        try:
            verify_client(cert, _trust_store(tenant), now)
        except ClientCertificateRejected as exc:
            reason = _rejection_reason(cert, tenant, now)
            log.debug("path validation refused a client certificate (%s): %s", reason, exc)
            return Verdict(403, None, reason)
        try:
            point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            identity = identity_from_point(point)
        except (TypeError, ValueError, AttributeError):
            return Verdict(403, None, "not a SeaCat identity key")
        seen = _Verified(identity, certificate_id(cert.public_bytes(Encoding.DER)), cert.not_valid_before_utc, cert.not_valid_after_utc)
        with _lock:
            _verified[cache_key] = seen
            while len(_verified) > MAX_VERIFIED:
                _verified.popitem(last=False)
    elif now < seen.not_before:
        return Verdict(403, seen.identity, NOT_YET_VALID)
    elif now > seen.not_after:
        return Verdict(403, seen.identity, EXPIRED)

    identity = seen.identity
    record = _identity_record(tenant_id, identity)
    if record is None:
        return Verdict(403, identity, "unknown identity")
    if record.blocked:
        return Verdict(403, identity, "identity is blocked")
    if record.revoked_at is not None:
        return Verdict(403, identity, "identity is revoked")
    if seen.cert_id in record.revoked_certs:
        return Verdict(403, identity, "certificate is revoked")
    return Verdict(200, identity, "ok")
