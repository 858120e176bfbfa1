"""EST (RFC 7030) use cases over the PKCS#10 one (chalicelib/service/csr.py): which profile a URL
names, who may enrol (an enrolment credential) or re-enrol (the holder of a current certificate),
and what a retry of the same request gets.

- **simpleenroll**: HTTP Basic with an enrolment credential for the profile. A use is taken only for
  a CSR that fits the profile (a 400 costs none) and that is new: polling a pending request, or
  asking again for a certificate already issued for the same CSR, takes none (RFC 7030 §4.2.3: the
  client repeats the same request after Retry-After).
- **simplereenroll**: the client certificate of the TLS connection, as a terminator the service
  trusts passed it: API Gateway's mutual TLS (the request context), or the project's NGINX gateway
  (``X-SSL-Client-Cert``), whose header counts only with the tenant's gateway credential beside it,
  so nobody calling the service directly can claim a certificate. The certificate must chain to one
  of the tenant's CA certificates in trust, be valid now, be one this service issued under the same
  profile and not be revoked (nor its key's identity blocked or revoked); the CSR must ask for the
  same subject and subjectAltName (§4.2.2), with the same key or a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from chalicelib.context import current
from chalicelib.domain import CertificateKind, RequestKind, RequestState, Tenant
from chalicelib.errors import Forbidden, InvalidInput, NotFound, Unauthenticated

log = logging.getLogger("seacat.est")

# How long a client waits before it asks again for a request awaiting manual approval.
RETRY_AFTER_SECONDS = 60
# The headers the project's NGINX gateway sets (infra/nginx/seacat-gateway.conf.template, EST block).
CLIENT_CERT_HEADER = "x-ssl-client-cert"
CLIENT_VERIFY_HEADER = "x-ssl-client-verify"
GATEWAY_CREDENTIAL_HEADER = "x-seacat-gateway-credential"
MAX_CLIENT_CERT = 16 * 1024


@dataclass(frozen=True)
class Answer:
    """200 with ``certificate`` (the issued one) or 202 (pending manual approval) with ``request_id``."""

    status: int
    request_id: str
    certificate: x509.Certificate | None = None
    retry_after: int = RETRY_AFTER_SECONDS


def _tenant(tenant_id: str) -> Tenant:
    from chalicelib.service.ids import TENANT_RE
    from chalicelib.service.tenants import cached_tenant

    tenant = cached_tenant(tenant_id) if TENANT_RE.fullmatch(tenant_id) else None
    if tenant is None:
        raise NotFound("no such tenant", field="tenant")
    return tenant


def profile_name(tenant_id: str, profile: str | None) -> str:
    """The profile a URL names, or the tenant's default EST profile (``estProfile``); NotFound otherwise."""
    from chalicelib.ca.profiles import NAME_RE, SEACAT
    from chalicelib.service.csr import profile_of

    tenant = _tenant(tenant_id)
    if profile is None:
        if tenant.config.est_profile is None:
            raise NotFound("the tenant has no default EST profile (estProfile): name one in the URL", field="profile")
        profile = tenant.config.est_profile
    if not NAME_RE.fullmatch(profile) or profile == SEACAT:
        raise NotFound("no such profile", field="profile")
    return profile_of(tenant, profile).name


def ca_certificates(tenant_id: str, profile: str | None) -> list[x509.Certificate]:
    """/cacerts: the tenant's CA certificates in trust (certs-only holds them as a DER SET OF: in the
    encoding's order, so no order is promised)."""
    from chalicelib.service.issuing import ca_certificate

    profile_name(tenant_id, profile)
    tenant = _tenant(tenant_id)
    trusted = tenant.trusted_cas()
    if not trusted:
        raise NotFound("the tenant has no CA certificate", field="tenant")
    return [ca_certificate(ca.cert_id, ca.der) for ca in trusted]


# Key types a profile admits, as CsrAttrs names them (RFC 7030 §4.5.2).
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_CURVES = {"P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34"}
_KEY_OIDS = {"Ed25519": "1.3.101.112", "RSA": "1.2.840.113549.1.1.1"}
_SIGNATURES = {"P-256": "1.2.840.10045.4.3.2", "P-384": "1.2.840.10045.4.3.3"}  # ecdsa-with-SHA256/384


def csr_attributes(tenant_id: str, profile: str | None) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """/csrattrs: what the profile needs of a CSR: its key types (an EC key with the curves as an
    attribute, Ed25519, RSA) and, for EC keys alone, the matching ECDSA signature algorithms."""
    from chalicelib.service.csr import profile_of

    found = profile_of(_tenant(tenant_id), profile_name(tenant_id, profile))
    oids: list[str] = []
    attributes: list[tuple[str, list[str]]] = []
    curves = [_CURVES[k] for k in found.key_types if k in _CURVES]
    if curves:
        attributes.append((_EC_PUBLIC_KEY, curves))
    oids += [_KEY_OIDS[k] for k in found.key_types if k in _KEY_OIDS]
    if set(found.key_types) <= set(_CURVES):
        oids += [_SIGNATURES[k] for k in found.key_types if k in _SIGNATURES]
    return oids, attributes


def _answer(outcome: Any) -> Answer:
    if outcome.status == 202 or outcome.certificate is None:
        return Answer(202, outcome.request_id)
    return Answer(200, outcome.request_id, x509.load_der_x509_certificate(outcome.certificate.der))


def _paid_for(tenant_id: str, request_id: str, now: datetime) -> bool:
    """Whether this very CSR was already taken in (a use was taken for it): pending, approved, or
    issued with its certificate still current. Asking again then takes no use."""
    store = current().certificates
    record = store.get_request(tenant_id, request_id)
    if record is None or record.kind != RequestKind.CSR:
        return False
    if record.state in (RequestState.PENDING, RequestState.APPROVED):
        return True
    if record.state == RequestState.ISSUED and record.cert_id:
        issued = store.get_certificate(tenant_id, record.cert_id)
        return issued is not None and issued.revoked_at is None and issued.not_after > now
    return False


def enroll(tenant_id: str, profile: str | None, csr_der: bytes, authorization: str | None) -> Answer:
    """/simpleenroll with an enrolment credential (HTTP Basic)."""
    return _answer(sign_with_credential(tenant_id, profile_name(tenant_id, profile), csr_der, authorization))


def sign_with_credential(tenant_id: str, name: str, csr_der: bytes, authorization: str | None) -> Any:
    """Sign a CSR (PEM or DER) under profile ``name`` for the holder of an enrolment credential for it
    (HTTP Basic): EST's simpleenroll, and ``POST /{tenant}/x509/sign`` with Basic. Returns the
    CsrOutcome of chalicelib/service/csr.py."""
    from chalicelib.ca.csr import load_csr, plan, request_id
    from chalicelib.service import credentials
    from chalicelib.service.csr import profile_of, sign_csr

    now = datetime.now(UTC)
    basic = credentials.basic_credentials(authorization)
    if basic is None:
        raise Unauthenticated("an enrolment credential is required (HTTP Basic)")
    credential = credentials.authenticate(tenant_id, basic[0], basic[1], now)
    if credential.profile != name:
        raise Forbidden(f"this enrolment credential is for profile {credential.profile}, not {name}")
    csr = load_csr(csr_der)
    plan(profile_of(_tenant(tenant_id), name), csr)  # a CSR outside the profile is a 400 and takes no use
    rid = request_id(csr)
    if not _paid_for(tenant_id, rid, now):
        credentials.consume(credential, now, rid)
    return sign_csr(tenant_id, csr, name, requester=f"est:{credential.username}", now=now)


# -- re-enrolment: the client certificate --------------------------------------------------------------


def _credential_matches(tenant: Tenant, presented: str | None) -> bool:
    expected = tenant.config.gateway_credentials
    if not expected or not presented:
        return False
    digest = hashlib.sha256(presented.strip().encode("utf-8", "replace")).hexdigest()
    return sum(hmac.compare_digest(digest, h) for h in expected) > 0


def client_certificate(
    tenant_id: str, headers: Mapping[str, str], context: Mapping[str, Any] | None
) -> x509.Certificate | None:
    """The TLS client certificate a trusted terminator passed, or None when there is none.

    API Gateway (mutual TLS on a custom domain) puts it in the request context; nobody else can.
    The NGINX gateway sends it URL-encoded in X-SSL-Client-Cert with X-SSL-Client-Verify: SUCCESS,
    and the tenant's gateway credential: without a valid credential the header is refused (401), as
    anyone can send headers to the service."""
    identity = (context or {}).get("identity") or {}
    client = identity.get("clientCert") if isinstance(identity, Mapping) else None
    pem: str | None = client.get("clientCertPem") if isinstance(client, Mapping) else None
    if pem:
        source = "api-gateway"
    else:
        forwarded = headers.get(CLIENT_CERT_HEADER)
        if not forwarded:
            return None
        if not _credential_matches(_tenant(tenant_id), headers.get(GATEWAY_CREDENTIAL_HEADER)):
            raise Unauthenticated("a forwarded client certificate counts only with the tenant's gateway credential")
        if (headers.get(CLIENT_VERIFY_HEADER) or "").strip() != "SUCCESS":
            raise Unauthenticated("the gateway did not verify the client certificate")
        if len(forwarded) > 3 * MAX_CLIENT_CERT:
            raise Unauthenticated("the client certificate is too large")
        pem = urllib.parse.unquote(forwarded)
        source = "gateway"
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii", "replace"))
    except ValueError:
        raise Unauthenticated("the client certificate cannot be parsed") from None
    log.debug("client certificate from %s", source)
    return cert


def _current_certificate(tenant: Tenant, cert: x509.Certificate, profile: str, now: datetime) -> Any:
    """The stored record of ``cert`` when it is a current certificate this service issued to the
    tenant under ``profile``; Unauthenticated (401) when it does not chain to the tenant's CA
    certificates in trust, Forbidden (403) when it did but may not re-enrol."""
    from chalicelib.service.issuing import ca_certificate

    signed = False
    for ca in tenant.trusted_cas():
        try:
            cert.verify_directly_issued_by(ca_certificate(ca.cert_id, ca.der))
        except Exception:  # another issuer name, a bad signature, an unsupported algorithm
            continue
        signed = True
        break
    if not signed:
        raise Unauthenticated("the client certificate is not issued by this tenant's CA")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Forbidden("the client certificate is not valid now")
    store = current().certificates
    record = store.get_certificate_by_serial(tenant.tenant_id, cert.serial_number)
    from cryptography.hazmat.primitives.serialization import Encoding

    if record is None or record.der != cert.public_bytes(Encoding.DER) or record.kind != CertificateKind.X509:
        raise Forbidden("the client certificate is not one this service issued from a CSR")
    if record.revoked_at is not None:
        raise Forbidden("the client certificate is revoked")
    request = store.get_request(tenant.tenant_id, record.cr_id) if record.cr_id else None
    if request is None or request.profile != profile:
        raise Forbidden(f"the client certificate was not issued under profile {profile}")
    identity = store.get_identity(tenant.tenant_id, record.identity) if record.identity else None
    why = identity.refusal(record.serial) if identity is not None else None
    if why is not None:
        raise Forbidden(why)
    return record


def reenroll(tenant_id: str, profile: str | None, csr_der: bytes, cert: x509.Certificate | None) -> Answer:
    """/simplereenroll, by the holder of a current certificate (the TLS client certificate)."""
    from chalicelib.ca.csr import load_csr, plan
    from chalicelib.service.csr import profile_of, sign_csr

    now = datetime.now(UTC)
    if cert is None:
        raise Unauthenticated("re-enrolment needs the current certificate as the TLS client certificate")
    name = profile_name(tenant_id, profile)
    tenant = _tenant(tenant_id)
    record = _current_certificate(tenant, cert, name, now)
    csr = load_csr(csr_der)
    if csr.subject != cert.subject:
        raise InvalidInput("a re-enrolment asks for the subject of the current certificate", field="subject")
    if _sans(csr) != _sans(cert):
        raise InvalidInput(
            "a re-enrolment asks for the subjectAltName of the current certificate", field="subjectAltName"
        )
    plan(profile_of(tenant, name), csr)
    outcome = sign_csr(tenant_id, csr, name, requester=f"est-reenroll:{record.cert_id[:16]}", renewal=True, now=now)
    return _answer(outcome)


def _sans(item: x509.Certificate | x509.CertificateSigningRequest) -> frozenset[x509.GeneralName]:
    try:
        return frozenset(item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return frozenset()
