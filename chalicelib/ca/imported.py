"""A CA certificate made elsewhere (the reference SeaCat PKI's), checked before a tenant takes it as its CA.

Migrating a fleet keeps its CA certificate byte for byte: its id (``TENANT:<sha384 of the DER>``) is
what the reference configuration names and what every gateway's bundle holds. It must be what this
service would have made: self-signed by the tenant's key, a client-authentication CA by the same
extension rules as a CA made from the JSON spec (``spec.check_client_ca_extensions``), valid now and
for at most 30 years, and one the gateway's verifier accepts client certificates under (checked by
issuing a throwaway client certificate under it and verifying it, exactly as nginx_authenticate does).
Its notBefore may be long past: it started when the reference made it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from chalicelib.ca import spec
from chalicelib.errors import InvalidInput

FIELD = "certificate"
MAX_PEM = 16 * 1024
# The extensions a tenant CA may carry; a critical one outside these is refused (a verifier that does
# not know it must refuse the certificate).
_KNOWN = {
    ExtensionOID.BASIC_CONSTRAINTS: "basicConstraints",
    ExtensionOID.KEY_USAGE: "keyUsage",
    ExtensionOID.EXTENDED_KEY_USAGE: "extendedKeyUsage",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: "subjectKeyIdentifier",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "authorityKeyIdentifier",
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: "subjectAltName",
    ExtensionOID.CRL_DISTRIBUTION_POINTS: "crlDistributionPoints",
}
CLOCK_SKEW = timedelta(minutes=5)


def _fail(reason: str) -> InvalidInput:
    return InvalidInput(reason, field=FIELD)


def load_certificate_pem(text: object) -> x509.Certificate:
    """Exactly one PEM certificate (what the JSON body's ``certificate`` holds)."""
    if not isinstance(text, str) or not text.strip():
        raise _fail("must be the CA certificate in PEM")
    if len(text) > MAX_PEM:
        raise _fail(f"a PEM CA certificate of at most {MAX_PEM} characters")
    try:
        certificates = x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise _fail("is not a PEM certificate") from None
    if len(certificates) != 1:
        raise _fail(f"must hold exactly one certificate, not {len(certificates)}")
    return certificates[0]


def _spki(key: ec.EllipticCurvePublicKey | object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _fail("its key is not an EC key: a tenant CA key is EC P-256 or P-384")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_imported_ca(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: datetime) -> None:
    """Refuse (InvalidInput, field ``certificate``) a CA certificate the tenant holding ``key`` may not
    take as its issuing CA."""
    from chalicelib.ca.builder import build_client_certificate
    from chalicelib.ca.verify import ClientCertificateRejected, trust_store, verify_client

    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise _fail("its key is not the tenant's CA key: the certificate must be over the key the tenant holds")
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # ValueError (issuer is not the subject), InvalidSignature, UnsupportedAlgorithm
        raise _fail("is not self-signed: its issuer must be its subject, signed with its own key") from None
    try:
        extensions = list(cert.extensions)
    except ValueError:  # duplicated or malformed extensions
        raise _fail("its extensions do not parse") from None
    checked: list[spec.ExtensionSpec] = []
    for ext in extensions:
        name = _KNOWN.get(ext.oid)
        if name is None:
            if ext.critical:
                raise _fail(f"it has a critical extension this service does not know ({ext.oid.dotted_string})")
            continue
        checked.append(spec.ExtensionSpec(ext.value, ext.critical, f"{FIELD}.extensions.{name}"))
        if isinstance(ext.value, x509.KeyUsage) and not (ext.value.key_cert_sign and ext.value.crl_sign):
            raise InvalidInput(
                "the tenant's CA signs certificates and CRLs: keyUsage needs keyCertSign and cRLSign",
                field=f"{FIELD}.extensions.keyUsage",
            )
    spec.check_client_ca_extensions(checked)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not_after <= now:
        raise InvalidInput("has expired", field=f"{FIELD}.validity.notAfter")
    if not_before > now + CLOCK_SKEW:
        raise InvalidInput("is not valid yet: the CA is used as soon as it is imported", field=f"{FIELD}.validity")
    if not_after - not_before > spec.CA_MAX_LIFETIME:
        raise InvalidInput(
            f"must be at most 30 years after notBefore ({spec.CA_MAX_LIFETIME.days} days)",
            field=f"{FIELD}.validity.notAfter",
        )
    # What the gateway will do with it: issue a throwaway client certificate under it and verify it.
    probe = ec.generate_private_key(ec.SECP256R1())
    start = max(not_before, now - timedelta(hours=1))
    try:
        leaf = build_client_certificate(
            public_key=probe.public_key(),
            identity="AAAAAAAAAAAAAAAA",
            issuer=cert,
            issuer_key=key,
            serial=1,
            not_before=start,
            not_after=min(not_after, now + timedelta(days=1), datetime(2049, 12, 31, tzinfo=UTC)),
        )
        verify_client(leaf, trust_store([cert]), now)
    except (ValueError, ClientCertificateRejected) as exc:
        raise _fail(f"client certificates issued under it would be refused: {exc}") from None
