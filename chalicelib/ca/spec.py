"""The JSON certificate spec of ``PUT /{tenant}/x509/self-signed`` (SeaCat PKI compatible).

``parse_certificate_spec`` turns an already-decoded JSON body into a ``CertificateSpec``.
It is the trust boundary for that body: any JSON-shaped input yields either a spec that
``builder.build_self_signed`` can sign, or ``InvalidInput`` with a dotted field path.

Defaults and interpretations (documented for API users):

- ``serialNumber`` absent: a random 128-bit serial (``serial.random_serial``).
- ``validity.notBefore`` absent: ``"now"``. ``validity.notAfter`` is required: a CA
  lifetime is a deliberate decision and there is no safe default.
- Relative times ``{"years", "weeks", "days", "hours", "minutes", "seconds"}``: a year is
  365 days (fixed length, so fractions and sums behave like ``openssl -days``; ten years
  from 2024-01-01 ends on 2033-12-29 because of leap days). notBefore is relative to now,
  notAfter relative to notBefore. Times are truncated to whole seconds.
- notAfter must be after both notBefore and now (an already expired CA is useless).
- Criticality when ``"critical"`` is absent follows RFC 5280: basicConstraints critical
  iff ``CA`` is true; keyUsage critical; everything else non-critical.
  subjectKeyIdentifier and authorityKeyIdentifier are always non-critical (RFC 5280 MUST).
- The subjectKeyIdentifier is always added by the builder; asking for it is accepted.

The parser accepts any well-formed certificate; ``check_client_ca`` then narrows it to what a
tenant CA may be (see "The tenant CA profile" below).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.ca.serial import SERIAL_LIMIT, random_serial
from chalicelib.errors import InvalidInput

UTC = UTC

# X.509 UTCTime starts in 1950; anything earlier is a typo, not a CA.
_EARLIEST = datetime(1950, 1, 1, tzinfo=UTC)

# Size caps keep a single request from producing an absurd certificate.
MAX_EXTENSIONS = 32
MAX_LIST_ITEMS = 100
MAX_STRING = 2048

# RFC 5280 basic constraints pathLen: anything beyond a handful is meaningless, and
# common verifiers hold it in a C long.
MAX_PATH_LEN = 2**31 - 1


@dataclass(frozen=True)
class ExtensionSpec:
    value: x509.ExtensionType
    critical: bool
    # Where the extension came from in the JSON body (e.g. "extensions[1].extendedKeyUsage"), so
    # later checks name the field; not part of the extension's identity.
    path: str = dataclasses.field(default="", compare=False)


@dataclass(frozen=True)
class CertificateSpec:
    serial_number: int
    subject: x509.Name
    not_before: datetime
    not_after: datetime
    extensions: tuple[ExtensionSpec, ...]
    # Key identifiers depend on keys, so the spec only records that they were asked for;
    # the builder computes them (and adds the SKI regardless).
    subject_key_identifier: bool = False
    authority_key_identifier: bool = False

    @property
    def is_ca(self) -> bool:
        """True when basicConstraints asserts CA (the certificate can sign client certificates)."""
        for ext in self.extensions:
            if isinstance(ext.value, x509.BasicConstraints):
                return ext.value.ca
        return False


# ---------------------------------------------------------------------------------------
# Small helpers


def _fail(reason: str, field: str) -> InvalidInput:
    # "" is the body itself, which has no field name.
    return InvalidInput(reason, field=field or None)


def _show(value: str) -> str:
    """Echo client text in messages, but bounded."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _fail(f"{field or 'the body'} must be a JSON object", field)
    for key in value:
        if not isinstance(key, str):
            raise _fail(f"{field or 'the body'} has a non-string key", field)
    return value


def _require_list(value: object, field: str, *, min_items: int = 1) -> list[object]:
    if not isinstance(value, list):
        raise _fail(f"{field} must be a JSON array", field)
    if len(value) < min_items:
        raise _fail(f"{field} must not be empty", field)
    if len(value) > MAX_LIST_ITEMS:
        raise _fail(f"{field} has more than {MAX_LIST_ITEMS} items", field)
    return value


def _require_string(value: object, field: str, *, max_length: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        raise _fail(f"{field} must be a string", field)
    if not value.strip():
        raise _fail(f"{field} must not be empty", field)
    if len(value) > max_length:
        raise _fail(f"{field} is longer than {max_length} characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
        raise _fail(f"{field} is not valid Unicode text", field) from None
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        # NUL and friends in names enable truncation/spoofing attacks in C verifiers.
        raise _fail(f"{field} contains control characters", field)
    return value


def _require_ascii(value: str, field: str, what: str) -> str:
    if not value.isascii():
        raise _fail(f"{field} must be ASCII ({what})", field)
    return value


def _reject_unknown_keys(obj: Mapping[str, object], allowed: frozenset[str], field: str) -> None:
    for key in obj:
        if key not in allowed:
            path = f"{field}.{key}" if field else key
            raise _fail(f"unknown field {_show(key)}", path)


# ---------------------------------------------------------------------------------------
# Top level


_TOP_LEVEL = frozenset({"serialNumber", "subject", "validity", "extensions"})


def parse_certificate_spec(body: object, *, now: datetime) -> CertificateSpec:
    """Validate a decoded JSON body into a CertificateSpec; raises InvalidInput only.

    ``now`` must be timezone-aware (a programmer error otherwise: ValueError).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    now = now.astimezone(UTC)

    obj = _require_object(body, "")
    _reject_unknown_keys(obj, _TOP_LEVEL, "")

    serial = _parse_serial(obj.get("serialNumber"))
    subject = _parse_subject(obj.get("subject"))
    not_before, not_after = _parse_validity(obj.get("validity"), now)
    extensions, ski, aki = _parse_extensions(obj.get("extensions"))
    return CertificateSpec(
        serial_number=serial,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        extensions=extensions,
        subject_key_identifier=ski,
        authority_key_identifier=aki,
    )


def _parse_serial(value: object) -> int:
    field = "serialNumber"
    if value is None:
        return random_serial()
    if not _is_int(value):
        raise _fail("serialNumber must be an integer", field)
    assert isinstance(value, int)
    if value <= 0:
        raise _fail("serialNumber must be positive", field)
    if value >= SERIAL_LIMIT:
        raise _fail("serialNumber must fit in 20 octets (less than 2**159)", field)
    return value


# ---------------------------------------------------------------------------------------
# Subject

_UTF8, _PRINTABLE, _IA5, _COUNTRY = "utf8", "printable", "ia5", "country"

# (OID, string kind, upper bound in characters). Bounds are RFC 5280 Appendix A ub-*
# values where one exists, else a sane cap. Kind mirrors the ASN.1 string type
# cryptography encodes the attribute with, so we can refuse what it cannot encode.
_Attr = tuple[x509.ObjectIdentifier, str, int]
_ATTR_NAME = x509.ObjectIdentifier("2.5.4.41")
_SUBJECT_ATTRIBUTES: dict[str, _Attr] = {}
for _names, _attr in (
    (("C", "countryName"), (NameOID.COUNTRY_NAME, _COUNTRY, 2)),
    (("ST", "stateOrProvinceName"), (NameOID.STATE_OR_PROVINCE_NAME, _UTF8, 128)),
    (("L", "localityName"), (NameOID.LOCALITY_NAME, _UTF8, 128)),
    (("O", "organizationName"), (NameOID.ORGANIZATION_NAME, _UTF8, 64)),
    (("OU", "organizationalUnitName"), (NameOID.ORGANIZATIONAL_UNIT_NAME, _UTF8, 64)),
    (("CN", "commonName"), (NameOID.COMMON_NAME, _UTF8, 64)),
    (("emailAddress",), (NameOID.EMAIL_ADDRESS, _IA5, 255)),
    (("serialNumber",), (NameOID.SERIAL_NUMBER, _PRINTABLE, 64)),
    (("DC", "domainComponent"), (NameOID.DOMAIN_COMPONENT, _IA5, 63)),
    (("street", "streetAddress"), (NameOID.STREET_ADDRESS, _UTF8, 128)),
    (("title",), (NameOID.TITLE, _UTF8, 64)),
    (("GN", "givenName"), (NameOID.GIVEN_NAME, _UTF8, 128)),
    (("SN", "surname"), (NameOID.SURNAME, _UTF8, 128)),
    (("initials",), (NameOID.INITIALS, _UTF8, 128)),
    (("pseudonym",), (NameOID.PSEUDONYM, _UTF8, 128)),
    (("generationQualifier",), (NameOID.GENERATION_QUALIFIER, _UTF8, 128)),
    (("UID", "userId"), (NameOID.USER_ID, _UTF8, 256)),
    (("postalCode",), (NameOID.POSTAL_CODE, _UTF8, 40)),
    (("dnQualifier",), (NameOID.DN_QUALIFIER, _PRINTABLE, 128)),
    (("name",), (_ATTR_NAME, _UTF8, 128)),
):
    for _n in _names:
        _SUBJECT_ATTRIBUTES[_n] = _attr

# ASN.1 PrintableString alphabet (X.680 41.4).
_PRINTABLE_RE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")


def _parse_subject(value: object) -> x509.Name:
    field = "subject"
    if value is None:
        raise _fail("subject is required (a CA needs a distinguished name)", field)
    obj = _require_object(value, field)
    if not obj:
        raise _fail("subject must contain at least one attribute", field)

    # One RDN per value, in the JSON object's order (which is the DER order).
    attributes: list[x509.NameAttribute[str]] = []
    for key, raw in obj.items():
        path = f"{field}.{key}"
        attr = _SUBJECT_ATTRIBUTES.get(key)
        if attr is None:
            raise _fail(f"unknown subject attribute {_show(key)}", path)
        if isinstance(raw, list):
            items = _require_list(raw, path)
            paths = [f"{path}[{i}]" for i in range(len(items))]
        else:
            items, paths = [raw], [path]
        for item, item_path in zip(items, paths, strict=True):
            attributes.append(_name_attribute(item, item_path, attr))
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])


def _name_attribute(value: object, field: str, attr: _Attr) -> x509.NameAttribute[str]:
    oid, kind, max_length = attr
    # Country codes get the specific "two-letter" message rather than a length one.
    text = _require_string(value, field, max_length=MAX_STRING if kind == _COUNTRY else max_length)
    if kind == _COUNTRY:
        if not _COUNTRY_RE.fullmatch(text):
            raise _fail(f"{field} must be a two-letter ISO 3166 country code", field)
        text = text.upper()
    elif kind == _PRINTABLE:
        if not _PRINTABLE_RE.fullmatch(text):
            raise _fail(f"{field} may contain only letters, digits, space and '()+,-./:=?", field)
    elif kind == _IA5:
        _require_ascii(text, field, "IA5String")
    try:
        return x509.NameAttribute(oid, text)
    except ValueError as exc:  # e.g. CN over 64 UTF-8 bytes
        raise _fail(f"{field}: {exc}", field) from None


# ---------------------------------------------------------------------------------------
# Validity

_VALIDITY_KEYS = frozenset({"notBefore", "notAfter"})
_RELATIVE_UNITS: dict[str, timedelta] = {
    "years": timedelta(days=365),
    "weeks": timedelta(weeks=1),
    "days": timedelta(days=1),
    "hours": timedelta(hours=1),
    "minutes": timedelta(minutes=1),
    "seconds": timedelta(seconds=1),
}


def _parse_validity(value: object, now: datetime) -> tuple[datetime, datetime]:
    field = "validity"
    if value is None:
        raise _fail("validity is required (at least validity.notAfter)", field)
    obj = _require_object(value, field)
    _reject_unknown_keys(obj, _VALIDITY_KEYS, field)

    raw_before = obj.get("notBefore", "now")
    not_before = _parse_time(raw_before, "validity.notBefore", now=now, base=now)
    if "notAfter" not in obj:
        raise _fail("validity.notAfter is required", "validity.notAfter")
    not_after = _parse_time(obj["notAfter"], "validity.notAfter", now=now, base=not_before)
    if not_after <= not_before:
        raise _fail("validity.notAfter must be after validity.notBefore", "validity.notAfter")
    if not_after <= now:
        raise _fail("validity.notAfter is in the past", "validity.notAfter")
    return not_before, not_after


def _parse_time(value: object, field: str, *, now: datetime, base: datetime) -> datetime:
    """ "now", an ISO-8601 string, or a relative object added to ``base``."""
    if isinstance(value, str):
        result = now if value == "now" else _parse_iso(value, field)
    elif isinstance(value, dict):
        result = _add_checked(base, _parse_relative(value, field), field)
    else:
        raise _fail(f'{field} must be "now", an ISO-8601 date-time or a relative object', field)
    result = result.replace(microsecond=0)  # X.509 times have no fractions
    if result < _EARLIEST:
        raise _fail(f"{field} is before 1950", field)
    return result


def _parse_iso(value: str, field: str) -> datetime:
    if len(value) > 64:
        raise _fail(f"{field} is not an ISO-8601 date-time", field)
    try:
        parsed = datetime.fromisoformat(value)  # 3.11+: accepts "Z" and date-only forms
    except ValueError:
        raise _fail(f"{field} is not an ISO-8601 date-time (e.g. 2030-01-01T00:00:00Z)", field) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # naive (and date-only) means UTC
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise _fail(f"{field} is out of range", field) from None


def _parse_relative(value: object, field: str) -> timedelta:
    obj = _require_object(value, field)
    if not obj:
        raise _fail(f"{field} needs at least one of {', '.join(_RELATIVE_UNITS)}", field)
    total = timedelta(0)
    for key, amount in obj.items():
        path = f"{field}.{key}"
        unit = _RELATIVE_UNITS.get(key)
        if unit is None:
            raise _fail(f"unknown time unit {_show(key)}; use {', '.join(_RELATIVE_UNITS)}", path)
        if not isinstance(amount, (int, float)) or isinstance(amount, bool):
            raise _fail(f"{path} must be a number", path)
        if not math.isfinite(amount) or amount < 0:
            raise _fail(f"{path} must be a non-negative finite number", path)
        try:
            total += unit * amount
        except (OverflowError, ValueError):
            raise _fail(f"{field} reaches beyond the year 9999", field) from None
    return total


def _add_checked(base: datetime, delta: timedelta, field: str) -> datetime:
    try:
        return base + delta
    except OverflowError:
        raise _fail(f"{field} reaches beyond the year 9999", field) from None


# ---------------------------------------------------------------------------------------
# Extensions


@dataclass
class _ExtensionState:
    """What the per-extension parsers accumulate, for the cross-extension checks."""

    extensions: list[ExtensionSpec]
    ski: bool = False
    aki: bool = False
    basic_constraints: tuple[x509.BasicConstraints, str] | None = None
    key_usage: tuple[x509.KeyUsage, str] | None = None


_Handler = Callable[[object, str, "bool | None", _ExtensionState], None]


def _parse_extensions(value: object) -> tuple[tuple[ExtensionSpec, ...], bool, bool]:
    field = "extensions"
    if value is None:
        return (), False, False
    if not isinstance(value, list):
        raise _fail("extensions must be a JSON array", field)
    if len(value) > MAX_EXTENSIONS:
        raise _fail(f"extensions has more than {MAX_EXTENSIONS} entries", field)

    state = _ExtensionState(extensions=[])
    seen: set[str] = set()
    for index, entry in enumerate(value):
        path = f"{field}[{index}]"
        obj = _require_object(entry, path)
        critical = obj.get("critical")
        if "critical" in obj and not isinstance(critical, bool):
            raise _fail(f"{path}.critical must be true or false", f"{path}.critical")
        assert critical is None or isinstance(critical, bool)
        names = [key for key in obj if key != "critical"]
        if not names:
            raise _fail(f"{path} names no extension", path)
        if len(names) > 1:
            raise _fail(f"{path} must name exactly one extension (got {len(names)})", path)
        name = names[0]
        handler = _HANDLERS.get(name)
        if handler is None:
            raise _fail(f"unknown extension {_show(name)}", f"{path}.{name}")
        if name in seen:
            raise _fail(f"duplicate extension {name!r}", f"{path}.{name}")
        seen.add(name)
        handler(obj[name], f"{path}.{name}", critical, state)

    _check_ca_consistency(state)
    return tuple(state.extensions), state.ski, state.aki


def _check_ca_consistency(state: _ExtensionState) -> None:
    """RFC 5280 MUSTs that span two extensions."""
    bc = state.basic_constraints
    ku = state.key_usage
    if ku is not None and ku[0].key_cert_sign and (bc is None or not bc[0].ca):
        # 4.2.1.3: keyCertSign requires basicConstraints cA.
        raise _fail("keyCertSign requires basicConstraints with CA true", ku[1])
    if bc is not None and bc[0].path_length is not None and ku is not None and not ku[0].key_cert_sign:
        # 4.2.1.9: pathLenConstraint only with keyCertSign (when keyUsage is present).
        raise _fail("pathLen requires keyUsage keyCertSign", f"{bc[1]}.pathLen")


def _basic_constraints(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    obj = _require_object(value, field)
    _reject_unknown_keys(obj, frozenset({"CA", "pathLen"}), field)
    ca = obj.get("CA", False)
    if not isinstance(ca, bool):
        raise _fail(f"{field}.CA must be true or false", f"{field}.CA")
    path_len = obj.get("pathLen")
    if path_len is not None:
        plen_field = f"{field}.pathLen"
        if not _is_int(path_len):
            raise _fail(f"{plen_field} must be an integer or null", plen_field)
        assert isinstance(path_len, int)
        if path_len < 0:
            raise _fail(f"{plen_field} must not be negative", plen_field)
        if path_len > MAX_PATH_LEN:
            raise _fail(f"{plen_field} is too large", plen_field)
        if not ca:
            raise _fail(f"{plen_field} is only allowed when CA is true", plen_field)
    ext = x509.BasicConstraints(ca=ca, path_length=path_len)
    state.basic_constraints = (ext, field)
    state.extensions.append(ExtensionSpec(ext, ca if critical is None else critical, field))


_KEY_USAGE_NAMES: dict[str, str] = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}


def _key_usage(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    # RFC 5280 4.2.1.3: at least one bit must be set, hence a non-empty list.
    items = _require_list(value, field)
    flags = {attr: False for attr in set(_KEY_USAGE_NAMES.values())}
    paths: dict[str, str] = {}
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        if not isinstance(item, str):
            raise _fail(f"{path} must be a string", path)
        attr = _KEY_USAGE_NAMES.get(item)
        if attr is None:
            raise _fail(f"unknown key usage {_show(item)}; use one of {', '.join(_KEY_USAGE_NAMES)}", path)
        if flags[attr]:
            raise _fail(f"duplicate key usage {item!r}", path)
        flags[attr] = True
        paths[attr] = path
    for only in ("encipher_only", "decipher_only"):
        if flags[only] and not flags["key_agreement"]:
            raise _fail("encipherOnly/decipherOnly require keyAgreement", paths[only])
    ext = x509.KeyUsage(**flags)
    state.key_usage = (ext, field)
    state.extensions.append(ExtensionSpec(ext, True if critical is None else critical, field))


_EKU_NAMES: dict[str, x509.ObjectIdentifier] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}
_DOTTED_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]{0,19})){1,30}")


def _extended_key_usage(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    items = _require_list(value, field)
    oids: list[x509.ObjectIdentifier] = []
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        if not isinstance(item, str):
            raise _fail(f"{path} must be a string", path)
        oid = _EKU_NAMES.get(item)
        if oid is None:
            if not _DOTTED_OID.fullmatch(item):
                raise _fail(
                    f"unknown extended key usage {_show(item)}; use a name ({', '.join(_EKU_NAMES)}) or a dotted OID",
                    path,
                )
            try:
                oid = x509.ObjectIdentifier(item)
            except ValueError:  # e.g. second arc >= 40 under 0 or 1
                raise _fail(f"{path} is not a valid OID", path) from None
        if oid in oids:
            raise _fail(f"duplicate extended key usage {item!r}", path)
        oids.append(oid)
    state.extensions.append(ExtensionSpec(x509.ExtendedKeyUsage(oids), False if critical is None else critical, field))


def _check_non_critical(critical: bool | None, field: str) -> None:
    if critical:
        parent = field.rsplit(".", 1)[0]
        raise _fail("this extension must be non-critical (RFC 5280)", f"{parent}.critical")


def _subject_key_identifier(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    _check_non_critical(critical, field)
    if not (value is True or value == "hash" or (isinstance(value, dict) and not value)):
        raise _fail(f'{field} must be true, {{}} or "hash" (it is computed from the key)', field)
    state.ski = True


def _authority_key_identifier(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    _check_non_critical(critical, field)
    if not (value is True or (isinstance(value, dict) and not value)):
        raise _fail(f"{field} must be true or {{}} (it is computed from the issuer key)", field)
    state.aki = True


_SAN_KINDS = ("dns", "ip", "email", "uri")
_DNS_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*")


def _subject_alt_name(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    items = _require_list(value, field)
    names: list[x509.GeneralName] = []
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        kind, raw = _san_parts(item, path)
        general_name = _general_name(kind, raw, path)
        if general_name in names:
            raise _fail("duplicate subjectAltName entry", path)
        names.append(general_name)
    state.extensions.append(
        ExtensionSpec(x509.SubjectAlternativeName(names), False if critical is None else critical, field)
    )


def _san_parts(item: object, path: str) -> tuple[str, object]:
    """("dns"|"ip"|"email"|"uri", raw value) from "DNS:x" or {"dns": "x"}."""
    if isinstance(item, str):
        prefix, sep, rest = item.partition(":")
        kind = prefix.lower()
        if not sep or kind not in _SAN_KINDS:
            raise _fail(f'{path} must start with "DNS:", "IP:", "email:" or "URI:"', path)
        return kind, rest
    if isinstance(item, dict):
        if len(item) != 1:
            raise _fail(f"{path} must have exactly one of {', '.join(_SAN_KINDS)}", path)
        ((key, raw),) = item.items()
        kind = key.lower() if isinstance(key, str) else ""
        if kind not in _SAN_KINDS:
            raise _fail(f"{path} must have exactly one of {', '.join(_SAN_KINDS)}", path)
        return kind, raw
    raise _fail(f'{path} must be a string like "DNS:example.com" or an object', path)


def _general_name(kind: str, raw: object, path: str) -> x509.GeneralName:
    text = _require_string(raw, path, max_length=253 if kind == "dns" else MAX_STRING)
    if kind == "ip":
        if "%" in text:  # zone ids have no place in a certificate
            raise _fail(f"{path} is not a valid IP address", path)
        try:
            return x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            raise _fail(f"{path} is not a valid IP address", path) from None
    _require_ascii(text, path, "internationalised names must use the IDNA A-label form")
    if kind == "dns":
        if not _DNS_NAME.fullmatch(text):
            raise _fail(f"{path} is not a valid DNS name", path)
        return x509.DNSName(text)
    if kind == "email":
        local, at, domain = text.rpartition("@")
        if not at or not local or not domain or " " in text or not _DNS_NAME.fullmatch(domain):
            raise _fail(f"{path} is not a valid email address", path)
    else:
        _require_url(text, path, schemes=None)
    try:
        return x509.RFC822Name(text) if kind == "email" else x509.UniformResourceIdentifier(text)
    except ValueError:  # cryptography's own checks, stricter in places than the ones above
        raise _fail(f"{path} is not a valid {'email address' if kind == 'email' else 'URI'}", path) from None


def _require_url(text: str, path: str, *, schemes: frozenset[str] | None) -> None:
    if not text.isascii() or any(ch.isspace() for ch in text):
        raise _fail(f"{path} is not a valid URI", path)
    try:
        parts = urlsplit(text)
    except ValueError:
        raise _fail(f"{path} is not a valid URI", path) from None
    if not parts.scheme or not (parts.netloc or parts.path):
        raise _fail(f"{path} is not an absolute URI", path)
    if schemes is not None and (parts.scheme.lower() not in schemes or not parts.netloc):
        raise _fail(f"{path} must be an {'/'.join(sorted(schemes))} URL", path)


_CRL_SCHEMES = frozenset({"http", "https", "ldap"})


def _crl_distribution_points(value: object, field: str, critical: bool | None, state: _ExtensionState) -> None:
    items = _require_list(value, field)
    points: list[x509.DistributionPoint] = []
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        url = _require_string(item, path)
        _require_url(url, path, schemes=_CRL_SCHEMES)
        # One distribution point per URL, as openssl's "URI:a,URI:b" does.
        points.append(
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        )
    state.extensions.append(
        ExtensionSpec(x509.CRLDistributionPoints(points), False if critical is None else critical, field)
    )


_HANDLERS: dict[str, _Handler] = {
    "basicConstraints": _basic_constraints,
    "keyUsage": _key_usage,
    "extendedKeyUsage": _extended_key_usage,
    "subjectKeyIdentifier": _subject_key_identifier,
    "authorityKeyIdentifier": _authority_key_identifier,
    "subjectAltName": _subject_alt_name,
    "crlDistributionPoints": _crl_distribution_points,
}


# ---------------------------------------------------------------------------------------
# The tenant CA profile
#
# A tenant CA signs SeaCat client certificates directly, is served in the public CA bundle
# (GET /{tenant}/x509/ca) and is trusted by the NGINX gateway for client authentication. A
# tenant token may create one, so everything that would let it be more than that is refused.

# How far before "now" a CA this service makes may start: clock skew and devices whose clocks
# lag, not a CA that claims to have existed for years before it was made.
CA_MAX_BACKDATE = timedelta(days=1)
# At most 30 calendar years: 30 spec years of 365 days plus the at most 8 leap days 30 years
# hold, so both {"years": 30} and "the same date 30 years on" fit and 31 years does not.
CA_MAX_LIFETIME = timedelta(days=30 * 365 + 8)

# SAN kinds that name hosts or services. A client-authentication CA has no use for them, and
# one in the public bundle (e.g. DNS:*.google.com) would read as a claim on that name.
_HOST_NAMES = (x509.DNSName, x509.IPAddress, x509.UniformResourceIdentifier)
_EKU_LABELS = {oid: name for name, oid in _EKU_NAMES.items()}


def check_client_ca(spec: CertificateSpec, *, now: datetime) -> None:
    """Refuse (InvalidInput naming the field) a spec that is not a client-authentication CA
    this service may make: ``check_client_ca_extensions`` and ``check_client_ca_validity``."""
    check_client_ca_extensions(spec.extensions)
    check_client_ca_validity(spec.not_before, spec.not_after, now=now)


def check_client_ca_extensions(extensions: Iterable[ExtensionSpec]) -> None:
    """The extension rules of a tenant CA; they apply to a CA certificate from elsewhere too
    (wrap its extensions in ExtensionSpec with the path to name in errors).

    - basicConstraints CA true with pathLen present and 0: the gateway verifies at depth 1
      (the CA signs client certificates itself), so no CA may chain below it.
    - extendedKeyUsage, if present, only clientAuth (absent means unrestricted, as in the
      reference spec; the service only ever issues clientAuth certificates under it).
    - subjectAltName without DNS, IP or URI names (an email contact is fine).
    """
    has_basic_constraints = False
    for ext in extensions:
        where = ext.path or "extensions"
        value = ext.value
        if isinstance(value, x509.BasicConstraints):
            has_basic_constraints = True
            if not value.ca:
                raise _fail("a tenant CA needs basicConstraints with CA true", f"{where}.CA")
            if value.path_length != 0:
                raise _fail(
                    "pathLen must be present and 0: the tenant CA signs client certificates itself "
                    "and the gateway verifies at depth 1, so no CA may chain below it",
                    f"{where}.pathLen",
                )
        elif isinstance(value, x509.ExtendedKeyUsage):
            for index, oid in enumerate(value):
                if oid == ExtendedKeyUsageOID.CLIENT_AUTH:
                    continue
                if oid == ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE:
                    why = "anyExtendedKeyUsage would let the CA's certificates serve any purpose"
                else:
                    why = f"{_EKU_LABELS.get(oid, oid.dotted_string)} is not for a client-authentication CA"
                raise _fail(
                    f"{why}: its extendedKeyUsage may only be clientAuth (or leave the extension out)",
                    f"{where}[{index}]",
                )
        elif isinstance(value, x509.SubjectAlternativeName):
            for index, name in enumerate(value):
                if isinstance(name, _HOST_NAMES):
                    raise _fail(
                        "a client-authentication CA names no host: DNS, IP and URI names are refused "
                        "(its certificate is public and is no server's); an email address is allowed",
                        f"{where}[{index}]",
                    )
    if not has_basic_constraints:
        raise _fail("a tenant CA needs basicConstraints with CA true and pathLen 0", "extensions.basicConstraints")


def check_client_ca_validity(not_before: datetime, not_after: datetime, *, now: datetime) -> None:
    """The validity rules for a CA certificate this service makes (not for one made elsewhere:
    a CA imported to migrate a fleet started when it started)."""
    now = now.astimezone(UTC).replace(microsecond=0)  # as the spec's "now": X.509 has whole seconds
    if not_before < now - CA_MAX_BACKDATE:
        raise _fail(
            "must be at most one day before now: a new CA did not exist before it was made", "validity.notBefore"
        )
    if not_after - not_before > CA_MAX_LIFETIME:
        raise _fail(
            f"must be at most 30 years after validity.notBefore ({CA_MAX_LIFETIME.days} days)", "validity.notAfter"
        )
