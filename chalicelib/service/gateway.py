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
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import IdentityRecord, Tenant
from chalicelib.service.ids import TENANT_RE

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
NOT_ENROLLED_KEY = "not the key this identity enrolled with"
NOT_ISSUED_HERE = "not a certificate this service issued to this identity"
CA_RETIRED = "issued by a retired CA certificate of this tenant"
CA_REVOKED = "issued by a revoked CA certificate of this tenant"

# Refusals decided before the tenant is known to exist (their tenant id may be invented).
_BEFORE_TENANT = frozenset(
    {"no_verify_header", "gateway_verify_failed", "no_certificate", "too_large", "no_tenant", "unknown_tenant"}
)

_CODES = {
    NOT_ISSUED: "not_issued",
    EXPIRED: "expired",
    NOT_YET_VALID: "not_yet_valid",
    CA_NOT_VALID: "ca_not_valid",
    NOT_CLIENT: "not_client",
    NOT_ACCEPTED: "not_accepted",
    CA_RETIRED: "ca_retired",
    CA_REVOKED: "ca_revoked",
    "identity is blocked": "identity_blocked",
    "identity is revoked": "identity_revoked",
    "certificate is revoked": "certificate_revoked",
}


@dataclass(frozen=True)
class Verdict:
    status: int  # 200, 401 or 403
    identity: str | None
    reason: str
    # A stable, bounded reason code for the metric (never caller-chosen text).
    code: str = "ok"
    # The certificate was signed by the tenant's CA: only such denials are worth an audit item.
    chained: bool = False


@dataclass(frozen=True)
class _Verified:
    identity: str
    serial: int
    tbs_sha256: bytes
    spki: bytes
    not_before: datetime
    not_after: datetime


# The caches (bounds and lifetimes in chalicelib/context.py):
# - verified: path validation (the ECDSA signature check above all) is the cost of this route. Its
#   result is kept per exact certificate body and per set of tenant CAs, as TLS stacks cache
#   verifications: a certificate seen again skips the signature check; its validity period,
#   revocation and block are still checked on every call. What it remembers is the certificate as
#   issued (serial, TBS digest, key), so another encoding of it meets the same revocation state.
# - identities: the identity records read, within SEACAT_REVOCATION_CACHE_SECONDS.
# - issued: earlier certificates of an identity the store confirmed it issued (never changes).
# - audited: the last audit item per tenant, identity and reason (at most one per window).
GATEWAY_CREDENTIAL_HEADER = "x-seacat-gateway-credential"


def forget(tenant_id: str | None = None) -> None:
    """Drop cached revocation state (this container's; others expire by their window)."""
    caches = current().caches
    if tenant_id is None:
        for cache in (caches.identities, caches.trust_stores, caches.verified, caches.issued, caches.audited):
            cache.clear()
    else:
        caches.identities.discard(lambda key: key[0] == tenant_id)


def _trust_store(tenant: Tenant) -> Any:
    """The tenant's CA certificates in trust (active and trusted; never retired or revoked ones)."""
    from chalicelib.ca.verify import trust_store
    from chalicelib.service.issuing import ca_certificate

    stores = current().caches.trust_stores
    trusted = tenant.trusted_cas()
    ids = tuple(ca.cert_id for ca in trusted)
    hit = stores.get(tenant.tenant_id)
    if not isinstance(hit, Missing) and hit[0] == ids:
        return hit[1]
    store = trust_store([ca_certificate(ca.cert_id, ca.der) for ca in trusted])
    stores.put(tenant.tenant_id, (ids, store))
    return store


def _identity_record(tenant_id: str, identity: str) -> IdentityRecord | None:
    context = current()
    key = (tenant_id, identity)
    hit = context.caches.identities.get(key)
    if not isinstance(hit, Missing):
        return hit
    record = context.certificates.get_identity(tenant_id, identity)
    context.caches.identities.put(key, record)
    return record


def _rejection_reason(cert: x509.Certificate, tenant: Tenant, now: datetime) -> str:
    """Why path validation refused ``cert``, found by looking at the certificate, not at the library's
    message (runs on refusals only). The first reason that applies: a certificate that none of the
    tenant's CAs signed is that, whatever else is wrong with it; then its validity period, its CA's,
    its kind; NOT_ACCEPTED for what is left (e.g. no authority key identifier, a signature algorithm
    the Web PKI policy forbids, an unknown critical extension)."""
    from chalicelib.domain import CaState
    from chalicelib.service.issuing import ca_certificate

    issuer: x509.Certificate | None = None
    states: set[CaState] = set()
    for ca in tenant.cas:
        candidate = ca_certificate(ca.cert_id, ca.der)
        try:
            cert.verify_directly_issued_by(candidate)  # the issuer's name and its signature
        except Exception:  # ValueError (another issuer), InvalidSignature, TypeError, UnsupportedAlgorithm
            continue
        states.add(ca.state)
        if ca.in_trust:
            issuer = candidate
            break
    if issuer is None:
        # Signed by one of the tenant's CA certificates out of trust (revocation first), or by none.
        return CA_REVOKED if CaState.REVOKED in states else CA_RETIRED if states else NOT_ISSUED
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


def authenticate(
    tenant_id: str, body: bytes, ssl_client_verify: str | None, gateway_credential: str | None = None
) -> Verdict:
    verdict = _decide(tenant_id, body, ssl_client_verify, gateway_credential)
    if verdict.status == 200:
        return verdict
    from chalicelib import observability

    # Denials are counted per tenant and reason code; a tenant id nobody created is counted as
    # "unknown", so invented ids cannot mint metric dimensions (each one is a billed metric).
    known = verdict.code not in _BEFORE_TENANT
    observability.metric("AuthenticationDenials", Tenant=tenant_id if known else "unknown", Reason=verdict.code)
    if verdict.chained and verdict.identity is not None:
        _audit_denial(tenant_id, verdict)
    return verdict


def _audit_denial(tenant_id: str, verdict: Verdict) -> None:
    """One audit item for a certificate the tenant's CA signed (a revoked, blocked or unknown
    identity presenting it); anything else is a log line and a metric only, never a write."""
    key = (tenant_id, verdict.identity or "", verdict.code)
    audited = current().caches.audited
    if not isinstance(audited.get(key), Missing):
        return  # audited within the window (AUDIT_WINDOW_SECONDS in chalicelib/context.py)
    audited.put(key, True)
    try:
        from chalicelib.service import audit

        audit.record(
            "authentication.denied",
            tenant_id,
            verdict.identity,
            str(verdict.status),
            {"reason": verdict.reason},
            actor="gateway",
        )
    except Exception:  # the denial stands even if the event cannot be written
        log.warning("could not record a denied authentication")


def _credential_ok(tenant: Tenant, presented: str | None) -> bool:
    expected = tenant.config.gateway_credentials
    if not expected:
        return True
    if presented is None:
        return False
    digest = hashlib.sha256(presented.strip().encode("utf-8", "replace")).hexdigest()
    # Every slot is compared (no early exit): the answer's timing says nothing about which matched.
    return sum(hmac.compare_digest(digest, h) for h in expected) > 0


def _decide(tenant_id: str, body: bytes, ssl_client_verify: str | None, gateway_credential: str | None) -> Verdict:
    from chalicelib.ca.issued import facts
    from chalicelib.ca.verify import ClientCertificateRejected, verify_client
    from chalicelib.seacat.codec import identity_from_point
    from chalicelib.service.tenants import cached_tenant

    if ssl_client_verify is None:
        # NGINX always sends it (proxy_set_header X-SSL-Client-Verify $ssl_client_verify): a request
        # without it did not pass through the gateway's own verification. Fail closed.
        return Verdict(401, None, "gateway verification: X-SSL-Client-Verify missing", "no_verify_header")
    if ssl_client_verify.strip() != "SUCCESS":
        # NONE (no certificate) or FAILED:<reason>: NGINX's own verification did not pass. Its text is
        # the caller's to choose, so it goes to a log line (bounded), not into the answer.
        log.info("gateway verification did not pass", extra={"verify": ssl_client_verify.strip()[:80]})
        return Verdict(401, None, "gateway verification did not pass", "gateway_verify_failed")
    if not body.strip():
        return Verdict(401, None, "no client certificate", "no_certificate")
    if len(body) > MAX_PEM:
        return Verdict(401, None, "client certificate too large", "too_large")
    if not TENANT_RE.fullmatch(tenant_id):
        return Verdict(403, None, "unknown tenant", "no_tenant")
    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.cas:
        return Verdict(403, None, "unknown tenant", "unknown_tenant")
    if not _credential_ok(tenant, gateway_credential):
        # The tenant asked that only its gateway may ask: checked before any certificate work.
        return Verdict(401, None, "gateway credential missing or wrong", "gateway_credential")
    from chalicelib.service.cas import note_ca_expiry

    note_ca_expiry(tenant)
    now = datetime.now(UTC)
    # Keyed by the CA certificates in trust: a retirement or a revocation changes the key, so what was
    # verified under the earlier set is verified again (and refused).
    cache_key = (tuple(ca.cert_id for ca in tenant.trusted_cas()), hashlib.sha256(body).digest())
    verified = current().caches.verified
    seen = verified.get(cache_key)
    if isinstance(seen, Missing):
        try:
            # NGINX's $ssl_client_raw_cert is PEM; the older $ssl_client_cert indents lines with tabs.
            pem = body.replace(b"\n\t", b"\n").strip()
            cert = (
                x509.load_pem_x509_certificate(pem)
                if pem.startswith(b"-----")
                else x509.load_der_x509_certificate(body)
            )
        except ValueError:
            return Verdict(401, None, "client certificate cannot be parsed", "unparseable")
        try:
            if not tenant.trusted_cas():
                raise ClientCertificateRejected("no CA certificate of the tenant is in trust")
            verify_client(cert, _trust_store(tenant), now)
        except ClientCertificateRejected as exc:
            reason = _rejection_reason(cert, tenant, now)
            log.debug("path validation refused a client certificate (%s): %s", reason, exc)
            return Verdict(403, None, reason, _CODES.get(reason, "not_accepted"))
        try:
            point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            identity = identity_from_point(point)
        except (TypeError, ValueError, AttributeError):
            return Verdict(403, None, "not a SeaCat identity key", "not_seacat_key", chained=False)
        issued = facts(cert)
        seen = _Verified(
            identity, issued.serial, issued.tbs_sha256, issued.spki, cert.not_valid_before_utc, cert.not_valid_after_utc
        )
        verified.put(cache_key, seen)
    elif now < seen.not_before:
        return Verdict(403, seen.identity, NOT_YET_VALID, "not_yet_valid")
    elif now > seen.not_after:
        return Verdict(403, seen.identity, EXPIRED, "expired")

    identity = seen.identity
    record = _identity_record(tenant_id, identity)
    if record is None:
        return Verdict(403, identity, "unknown identity", "unknown_identity", chained=True)
    why = record.refusal(seen.serial)
    if why is not None:
        return Verdict(403, identity, why, _CODES[why], chained=True)
    return _issued_to(tenant_id, record, seen)


def _issued_to(tenant_id: str, record: IdentityRecord, seen: _Verified) -> Verdict:
    """200 only for a certificate whose TBS this service issued to this identity, for the key the
    identity enrolled with. Another encoding of an issued certificate (a re-encoded signature) has
    the same TBS, so it is that certificate, with its revocation state; anything else is refused."""
    from chalicelib.ca.issued import issued_facts

    identity = record.identity
    if record.cert_der is None:
        return Verdict(403, identity, "unknown identity", "unknown_identity", chained=True)
    enrolled = issued_facts(record.cert_der)
    if enrolled.spki != seen.spki:
        # The identity is an 80-bit truncated hash of the key: compare the key itself.
        return Verdict(403, identity, NOT_ENROLLED_KEY, "wrong_key", chained=True)
    if enrolled.tbs_sha256 == seen.tbs_sha256:
        return Verdict(200, identity, "ok")
    key = (tenant_id, seen.serial, seen.tbs_sha256)
    issued = current().caches.issued
    if issued.get(key) != identity:
        # An earlier certificate of this identity (renewed since): the store says whether it issued it.
        stored = current().certificates.get_certificate_by_serial(tenant_id, seen.serial)
        if stored is None or stored.identity != identity or stored.kind != "seacat":
            return Verdict(403, identity, NOT_ISSUED_HERE, "not_issued_here", chained=True)
        if stored.revoked_at is not None:
            return Verdict(403, identity, "certificate is revoked", "certificate_revoked", chained=True)
        if issued_facts(stored.der).tbs_sha256 != seen.tbs_sha256:
            return Verdict(403, identity, NOT_ISSUED_HERE, "not_issued_here", chained=True)
        issued.put(key, identity)
    return Verdict(200, identity, "ok")
