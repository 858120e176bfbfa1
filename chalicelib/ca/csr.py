"""A PKCS#10 CSR against a certificate profile: proof of possession, key type, subject, requested
extensions. ``plan`` answers what the certificate will hold or raises InvalidInput naming the first
CSR field outside the profile (``publicKey``, ``signature``, ``subject.<attr>``, ``subjectAltName[i]``,
``keyUsage``, ``extendedKeyUsage[i]``, ``extensions.<oid>``). Pure: no AWS, no Chalice, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from chalicelib.ca.profiles import DNS_LABEL, MAX_SUBJECT_VALUE, PLACEHOLDER, SAN_PLACEHOLDERS, Profile
from chalicelib.errors import InvalidInput

MAX_CSR_SIZE = 16 * 1024  # an RSA-8192 CSR with 100 SANs fits; PEM or DER
MAX_RSA_BITS = 8192

_KU_ATTR = {
    "digitalSignature": "digital_signature",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
}
EKU_OIDS: dict[str, x509.ObjectIdentifier] = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
}
_EKU_NAMES = {oid: name for name, oid in EKU_OIDS.items()}
ATTRIBUTE_OIDS: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "UID": NameOID.USER_ID,
    "DC": NameOID.DOMAIN_COMPONENT,
}
_ATTRIBUTE_NAMES = {oid: name for name, oid in ATTRIBUTE_OIDS.items()}
# Extensions a CSR may request; the profile decides each. Anything else is refused by its OID.
_REQUESTABLE = (
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
)


def _fail(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field)


_PEM = re.compile(
    rb"-----BEGIN (NEW )?CERTIFICATE REQUEST-----(.*?)-----END (NEW )?CERTIFICATE REQUEST-----", re.DOTALL
)


def load_csr(body: bytes) -> x509.CertificateSigningRequest:
    """A CSR from PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER; InvalidInput("csr")."""
    if len(body) > MAX_CSR_SIZE:
        raise _fail(f"a CSR is at most {MAX_CSR_SIZE} bytes", "csr")
    if not body.strip():
        raise _fail("a PKCS#10 CSR (PEM or DER) is required", "csr")
    der = body
    if body.lstrip()[:1] == b"-":
        match = _PEM.search(body)
        if match is None:
            raise _fail("not a PEM CERTIFICATE REQUEST", "csr")
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            raise _fail("the PEM's base64 is malformed", "csr") from None
    try:
        return x509.load_der_x509_csr(der)
    except (ValueError, x509.InvalidVersion):
        raise _fail("not a PKCS#10 certificate request (PEM or DER)", "csr") from None


def request_id(csr: x509.CertificateSigningRequest) -> str:
    """A CSR's request id: lowercase hex SHA-384 of its DER (as a CR's id is of the CR)."""
    return hashlib.sha384(csr.public_bytes(Encoding.DER)).hexdigest()


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def csr_identity(public_key: object) -> str:
    """The identity a CSR's key is filed under (its certificates listed, revoked, blocked together):
    16 characters of Base32(SHA-384("x509\\0" || SubjectPublicKeyInfo DER)). The prefix keeps it apart
    from the SeaCat identity of the same key (SHA-384 of the bare EC point), so a certificate from a
    CSR is never taken for a SeaCat identity's (nginx_authenticate refuses it)."""
    assert isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey)
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b32encode(hashlib.sha384(b"x509\0" + spki).digest()).decode("ascii")[:16]


@dataclass(frozen=True)
class Plan:
    """What a certificate issued from a CSR under a profile holds (besides validity, serial, issuer)."""

    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]
    key_usage: x509.KeyUsage
    ekus: tuple[x509.ObjectIdentifier, ...]
    key_type: str  # P-256, P-384, Ed25519, RSA-<bits>


def key_type(public_key: object) -> str:
    """P-256, P-384, Ed25519, RSA-<bits>; another key's kind in words (for the error message)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "P-256", "secp384r1": "P-384"}.get(public_key.curve.name, f"EC {public_key.curve.name}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    return type(public_key).__name__.removesuffix("PublicKey").lstrip("_") or "unknown"


def shown(text: str, limit: int = 80) -> str:
    """A CSR-supplied string as an error message may quote it: printable, bounded."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return repr(clean + ("..." if len(text) > limit else ""))


def _check_key(profile: Profile, public_key: object) -> str:
    kind = key_type(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        if "RSA" not in profile.key_types:
            raise _fail(
                f"key type {kind} is not allowed by profile {profile.name} ({', '.join(profile.key_types)})",
                "publicKey",
            )
        if not profile.rsa_min_bits <= public_key.key_size <= MAX_RSA_BITS:
            raise _fail(
                f"an RSA key must have {profile.rsa_min_bits} to {MAX_RSA_BITS} bits, not {public_key.key_size}",
                "publicKey",
            )
        exponent = public_key.public_numbers().e
        if exponent < 65537 or exponent % 2 == 0:  # e=3 included: CA/B BR 6.1.6, NIST SP 800-89
            raise _fail("the RSA public exponent must be odd and 65537 or larger", "publicKey")
        return kind
    if kind not in profile.key_types:
        raise _fail(
            f"key type {kind} is not allowed by profile {profile.name} ({', '.join(profile.key_types)})", "publicKey"
        )
    return kind


def _dns_match(pattern: str, name: str) -> bool:
    if pattern.startswith("**."):
        suffix = pattern[2:]
        return name.endswith(suffix) and len(name) > len(suffix)
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return name.endswith(suffix) and "." not in name[: -len(suffix)] and len(name) > len(suffix)
    return name == pattern


_DNS_NAME = re.compile(rf"{DNS_LABEL}(\.{DNS_LABEL})*")


def _uri_path_ok(path: str) -> bool:
    """No segment a consumer would resolve out of the pattern's prefix: '.' or '..' (percent-encoded
    too, RFC 3986 6.2.2), an encoded '/', or a backslash (a '/' to WHATWG URL parsers)."""
    for segment in re.split(r"[?#]", path, maxsplit=1)[0].split("/"):
        decoded = urllib.parse.unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return False
    return True


def _uri_match(pattern: str, uri: str) -> bool:
    scheme, _, rest = uri.partition("://")
    host, slash, path = rest.partition("/")
    if "*" in uri or not _uri_path_ok(path):
        return False
    normalised = f"{scheme.lower()}://{host.lower()}" + (f"/{path}" if slash else "")
    regex = re.escape(pattern)
    regex = regex.replace(r"/\*\*", "(/.*)?") if regex.endswith(r"/\*\*") else regex
    regex = regex.replace(r"\*", "[^/?#]+")  # one path segment: not a query or fragment either
    return re.fullmatch(regex, normalised) is not None


def _email_match(pattern: str, email: str) -> bool:
    local, _, domain = email.rpartition("@")
    p_local, _, p_domain = pattern.rpartition("@")
    # One '@' (a reader that splits at the first would see another domain), a printable local part
    # (no controls: it reaches logs and terminals), and a domain that is a DNS name.
    if not local or "@" in local or not local.isascii() or not local.isprintable() or " " in local:
        return False
    if not domain.isascii() or not _DNS_NAME.fullmatch(domain.lower()):
        return False
    if p_local != "*" and p_local != local:
        return False
    return _dns_match(p_domain, domain.lower())


def _check_san(profile: Profile, name: x509.GeneralName, field: str) -> tuple[str, str]:
    if isinstance(name, x509.DNSName):
        value = name.value
        if not value.isascii() or not _DNS_NAME.fullmatch(value.lower()):
            raise _fail(f"DNS name {shown(value)} is not a valid DNS name (wildcards are never issued)", field)
        kind, ok = "dns", any(_dns_match(p, value.lower()) for p in profile.san_patterns("dns"))
    elif isinstance(name, x509.UniformResourceIdentifier):
        value = name.value
        ok_form = value.isascii() and value.isprintable() and " " not in value and "://" in value
        kind, ok = "uri", ok_form and any(_uri_match(p, value) for p in profile.san_patterns("uri"))
    elif isinstance(name, x509.RFC822Name):
        value = name.value
        kind, ok = "email", value.isascii() and any(_email_match(p, value) for p in profile.san_patterns("email"))
    elif isinstance(name, x509.IPAddress):
        value = str(name.value)
        kind = "ip"
        ok = isinstance(name.value, ipaddress.IPv4Address | ipaddress.IPv6Address) and any(
            name.value in ipaddress.ip_network(p) for p in profile.san_patterns("ip")
        )
    else:
        raise _fail(f"a SAN of type {type(name).__name__} is not allowed by any profile", field)
    if not ok:
        allowed = profile.san_patterns(kind)
        why = f"patterns: {', '.join(allowed)}" if allowed else f"no {kind} SANs allowed"
        raise _fail(f"{kind} SAN {shown(value)} is outside profile {profile.name} ({why})", field)
    return kind, value


def _csr_subject(csr: x509.CertificateSigningRequest) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for index, rdn in enumerate(csr.subject.rdns):
        for attribute in rdn:
            name = _ATTRIBUTE_NAMES.get(attribute.oid)
            label = name or attribute.oid.dotted_string
            if not isinstance(attribute.value, str):
                raise _fail(f"subject attribute {label} is not a string", f"subject.{label}")
            if name is None:
                raise _fail(f"subject attribute {label} is outside every profile", f"subject.{label}")
            out.append((name, attribute.value))
        del index
    return out


def _subject(profile: Profile, csr: x509.CertificateSigningRequest, sans: list[tuple[str, str]]) -> x509.Name:
    given = _csr_subject(csr)
    seen: set[str] = set()
    for name, value in given:
        if name in seen:
            raise _fail(f"subject attribute {name} appears more than once", f"subject.{name}")
        seen.add(name)
        if not value or len(value) > MAX_SUBJECT_VALUE or not value.isprintable():
            raise _fail(f"must be 1 to {MAX_SUBJECT_VALUE} printable characters", f"subject.{name}")
    rule = profile.subject
    values = dict(given)
    literal: set[int] = set()
    if rule.mode == "csr":
        for name, _ in given:
            if name not in rule.allowed:
                raise _fail(
                    f"subject attribute {name} is outside profile {profile.name} ({', '.join(rule.allowed)})",
                    f"subject.{name}",
                )
        for name in rule.required:
            if name not in values:
                raise _fail(f"profile {profile.name} requires the subject attribute {name}", f"subject.{name}")
        attributes = [(name, value) for name, value in given]
    else:
        used = {
            p.removeprefix("csr.")
            for _, text in rule.template
            for p in PLACEHOLDER.findall(text)
            if p.startswith("csr.")
        }
        for name, _ in given:
            if name not in used:
                raise _fail(
                    f"subject attribute {name} is not taken by profile {profile.name}'s subject template",
                    f"subject.{name}",
                )
        first: dict[str, str] = {}
        for kind, value in sans:
            first.setdefault(kind, value)
        attributes = []
        for name, text in rule.template:

            def fill(match: re.Match[str], name: str = name) -> str:
                key = match.group(1)
                if key.startswith("csr."):
                    source = key.removeprefix("csr.")
                    if source not in values:
                        raise _fail(
                            f"profile {profile.name}'s subject template needs the CSR's {source}", f"subject.{source}"
                        )
                    return values[source]
                kind = SAN_PLACEHOLDERS[key]
                if kind not in first:
                    raise _fail(f"profile {profile.name}'s subject template needs a {kind} SAN", "subjectAltName")
                return first[kind]

            value = PLACEHOLDER.sub(fill, text)
            if len(value) > MAX_SUBJECT_VALUE:
                raise _fail(
                    f"the subject's {name} would be longer than {MAX_SUBJECT_VALUE} characters", f"subject.{name}"
                )
            attributes.append((name, value))
            if not PLACEHOLDER.search(text):
                literal.add(len(attributes) - 1)  # the administrator's own text, not the CSR's
    name_attributes: list[x509.NameAttribute[str]] = []
    for index, (name, value) in enumerate(attributes):
        if index not in literal:
            _check_name_like(profile, name, value)
        if name == "C" and (len(value) != 2 or not value.isascii() or not value.isalpha()):
            raise _fail("a country is two letters (ISO 3166)", "subject.C")
        if name in ("emailAddress", "DC") and not value.isascii():
            raise _fail("must be ASCII", f"subject.{name}")
        try:
            name_attributes.append(x509.NameAttribute(ATTRIBUTE_OIDS[name], value))
        except ValueError as exc:
            raise _fail(f"not a valid {name}: {exc}", f"subject.{name}") from None
    return x509.Name(name_attributes)


_HOST_LIKE = re.compile(r"[A-Za-z0-9_.*-]+")


def _check_name_like(profile: Profile, name: str, value: str) -> None:
    """A subject CN that reads as a host name or an IP address is held to the profile's dns or ip
    patterns, an emailAddress to its email patterns: a client that finds no SAN of that kind checks
    these instead (OpenSSL's X509_check_host falls back to the CN, S/MIME agents to emailAddress)."""
    field = f"subject.{name}"
    if name == "emailAddress":
        if not any(_email_match(p, value) for p in profile.san_patterns("email")):
            raise _fail(
                f"the subject's emailAddress {shown(value)} is outside profile {profile.name}'s email patterns", field
            )
        return
    if name != "CN":
        return
    general: x509.GeneralName
    try:
        general = x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        if not (_HOST_LIKE.fullmatch(value) and ("." in value or "*" in value)):
            return  # a device name, not a host name
        general = x509.DNSName(value)
    try:
        _check_san(profile, general, field)
    except InvalidInput as exc:
        raise _fail(f"the subject's CN reads as a host name or address: {exc.message}", field) from None


def _key_usage(profile: Profile, kind: str, requested: x509.KeyUsage | None) -> x509.KeyUsage:
    # What the key can do: no key agreement with RSA or Ed25519, no key encipherment with EC/Ed25519.
    possible = set(profile.key_usages)
    if not kind.startswith("RSA"):
        possible -= {"keyEncipherment", "dataEncipherment"}
    if not kind.startswith("P-"):
        possible.discard("keyAgreement")
    chosen = possible
    if requested is not None:
        asked = {name for name, attr in _KU_ATTR.items() if getattr(requested, attr)}
        for extra in ("key_cert_sign", "crl_sign"):
            if getattr(requested, extra):
                raise _fail(
                    f"keyUsage {'keyCertSign' if extra == 'key_cert_sign' else 'cRLSign'} is never issued to an end entity",
                    "keyUsage",
                )
        outside = sorted(asked - possible)
        if outside:
            raise _fail(f"keyUsage {outside[0]} is outside profile {profile.name} for a {kind} key", "keyUsage")
        chosen = asked
    if not chosen:
        raise _fail(f"profile {profile.name} allows no key usage for a {kind} key", "keyUsage")
    flags = {attr: name in chosen for name, attr in _KU_ATTR.items()}
    return x509.KeyUsage(**flags, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)


def plan(profile: Profile, csr: x509.CertificateSigningRequest) -> Plan:
    """Check ``csr`` against ``profile``: its signature (proof of possession), key type, subject,
    requested extensions. Raises InvalidInput naming the first field outside the profile."""
    if profile.builtin:
        raise _fail("the seacat profile issues to SeaCat CRs only (/{tenant}/seacat/enroll)", "profile")
    try:
        public_key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):  # an unsupported or malformed key
        raise _fail("the CSR's public key is not a supported key", "publicKey") from None
    kind = _check_key(profile, public_key)
    try:
        signed = csr.is_signature_valid
    except Exception:  # unsupported signature algorithms raise instead of answering False
        signed = False
    if not signed:
        raise _fail("the CSR's signature does not verify with its public key (no proof of possession)", "signature")
    try:
        extensions = list(csr.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise _fail(f"the CSR's requested extensions cannot be read: {type(exc).__name__}", "extensions") from None
    requested_ku: x509.KeyUsage | None = None
    requested_eku: tuple[x509.ObjectIdentifier, ...] | None = None
    san_names: list[x509.GeneralName] = []
    for ext in extensions:
        if ext.oid not in _REQUESTABLE:
            raise _fail(
                f"the CSR requests extension {ext.oid.dotted_string}, which profiles do not grant",
                f"extensions.{ext.oid.dotted_string}",
            )
        value = ext.value
        if isinstance(value, x509.SubjectAlternativeName):
            san_names = list(value)
        elif isinstance(value, x509.KeyUsage):
            requested_ku = value
        elif isinstance(value, x509.ExtendedKeyUsage):
            requested_eku = tuple(value)
        elif isinstance(value, x509.BasicConstraints) and value.ca:
            raise _fail("a CSR may not ask to be a CA", "basicConstraints")
    if len(san_names) > profile.max_sans:
        raise _fail(
            f"{len(san_names)} SANs requested, profile {profile.name} allows {profile.max_sans}", "subjectAltName"
        )
    if profile.require_san and not san_names:
        raise _fail(f"profile {profile.name} requires at least one SAN", "subjectAltName")
    sans: list[tuple[str, str]] = []
    for index, general_name in enumerate(san_names):
        sans.append(_check_san(profile, general_name, f"subjectAltName[{index}]"))
    if len(set(san_names)) != len(san_names):
        raise _fail("a SAN is requested twice", "subjectAltName")
    ekus = tuple(EKU_OIDS[name] for name in profile.ekus)
    if requested_eku is not None:
        for index, oid in enumerate(requested_eku):
            name = _EKU_NAMES.get(oid)
            if name is None or name not in profile.ekus:
                label = name or oid.dotted_string
                raise _fail(
                    f"extendedKeyUsage {label} is outside profile {profile.name} ({', '.join(profile.ekus)})",
                    f"extendedKeyUsage[{index}]",
                )
        if not requested_eku:
            raise _fail("an empty extendedKeyUsage", "extendedKeyUsage")
        ekus = tuple(dict.fromkeys(requested_eku))
    return Plan(
        subject=_subject(profile, csr, sans),
        sans=tuple(san_names),
        key_usage=_key_usage(profile, kind, requested_ku),
        ekus=ekus,
        key_type=kind,
    )


def describe(csr: x509.CertificateSigningRequest, plan_: Plan | None = None) -> dict[str, object]:
    """The CSR's details for the approve webhook and the request's metadata (CSR-supplied strings,
    shown as data: the receiver must treat them so)."""
    sans = [_san_text(name) for name in (plan_.sans if plan_ is not None else ())]
    details: dict[str, object] = {"subject": csr.subject.rfc4514_string()}
    if plan_ is not None:
        details["issuedSubject"] = plan_.subject.rfc4514_string()
        details["subjectAltName"] = sans
        details["keyType"] = plan_.key_type
        details["extendedKeyUsage"] = [_EKU_NAMES.get(oid, oid.dotted_string) for oid in plan_.ekus]
        details["keyUsage"] = [name for name, attr in _KU_ATTR.items() if getattr(plan_.key_usage, attr)]
    return details


def validity(
    now: datetime, lifetime: timedelta, *, ca_not_after: datetime, backdate: timedelta = timedelta(minutes=5)
) -> tuple[datetime, datetime]:
    """(not_before, not_after) of a profile's certificate issued at ``now``: backdated a little (clock
    drift), whole seconds, ``lifetime`` from now, never past the CA's notAfter (callers refuse to issue
    when that leaves ``not_after <= now``)."""
    not_before = (now.astimezone(UTC) - backdate).replace(microsecond=0)
    not_after = min((now.astimezone(UTC) + lifetime).replace(microsecond=0), ca_not_after.astimezone(UTC))
    return not_before, not_after


def build_certificate(
    *,
    plan: Plan,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
) -> x509.Certificate:
    """An end-entity certificate as ``plan`` says, signed by the tenant's CA. Apart from the SeaCat
    builder (``builder.build_client_certificate``, the enrolment hot path), which it shares the issuer
    checks with. Raises ValueError for arguments the caller should have prevented."""
    from chalicelib.ca.builder import END_ENTITY, _issuer_aki, crl_distribution, ocsp_access
    from chalicelib.ca.keys import signature_hash
    from chalicelib.ca.serial import SERIAL_LIMIT

    if not_after <= not_before:
        raise ValueError("not_after must be after not_before")
    if isinstance(serial, bool) or not 0 < serial < SERIAL_LIMIT:
        raise ValueError("serial must be a positive integer of at most 20 octets")
    builder = (
        x509.CertificateBuilder()
        .subject_name(plan.subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(END_ENTITY, critical=True)
        .add_extension(plan.key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(plan.ekus)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_issuer_aki(issuer, issuer_key), critical=False)
    )
    if plan.sans:
        # RFC 5280 4.2.1.6: critical when the subject is empty.
        builder = builder.add_extension(x509.SubjectAlternativeName(list(plan.sans)), critical=not plan.subject.rdns)
    if crl_url is not None:
        builder = builder.add_extension(crl_distribution(crl_url), critical=False)
    if ocsp_url is not None:
        builder = builder.add_extension(ocsp_access(ocsp_url), critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key))


def describe_request(der: bytes) -> dict[str, object]:
    """What a stored CSR asks for, for an administrator deciding it: subject, requested SANs and EKUs,
    key type. Never raises: a part that cannot be read is left out."""
    details: dict[str, object] = {}
    try:
        csr = x509.load_der_x509_csr(der)
        details["subject"] = csr.subject.rfc4514_string()
        details["keyType"] = key_type(csr.public_key())
        for ext in csr.extensions:
            if isinstance(ext.value, x509.SubjectAlternativeName):
                details["subjectAltName"] = [_san_text(name) for name in ext.value]
            elif isinstance(ext.value, x509.ExtendedKeyUsage):
                details["extendedKeyUsage"] = [_EKU_NAMES.get(oid, oid.dotted_string) for oid in ext.value]
    except Exception:  # a stored CSR passed load_csr and plan once; this view must not fail on it
        pass
    return details


def _san_text(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    return type(name).__name__
