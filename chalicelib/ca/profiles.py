"""Certificate profiles: what a PKCS#10 CSR (``POST /{tenant}/x509/sign?profile=NAME``, EST) may obtain.

A profile is data, kept on the tenant's configuration (a handful per tenant), like a Vault role or a
step-ca provisioner's claims. ``parse_profile`` is the trust boundary for an admin's JSON (any shape
yields a Profile or InvalidInput naming the field); ``Profile.to_json``/``from_json`` are its stored
form; ``chalicelib.ca.csr.plan`` checks a CSR against one. Pure: no AWS, no Chalice, no cryptography
(the tenant configuration that holds profiles is read on every path, cold starts included).

Patterns (``sans``):

- ``dns``: a DNS name, ``*.example.com`` (exactly one label in place of ``*``) or ``**.example.com``
  (one or more labels), compared case-insensitively. A CSR's own wildcard name is never issued.
- ``uri``: a URI where ``*`` stands for one path segment (no ``/``) and a trailing ``/**`` for any
  rest, e.g. ``spiffe://example.org/ns/*/sa/*``, ``spiffe://example.org/**``; scheme and host compare
  case-insensitively, the path exactly.
- ``email``: ``*@example.com`` (any local part), ``*@**.example.com``, or an exact address.
- ``ip``: a network in CIDR form (``10.0.0.0/8``, ``2001:db8::/32``) or one address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import InvalidInput

SEACAT = "seacat"  # the built-in profile: SeaCat CRs (``/{tenant}/seacat/enroll``), read-only
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_PROFILES = 32  # per tenant (the tenant item also holds up to 300 KiB of CA certificates)
MAX_PROFILE_JSON = 8 * 1024  # bytes of one profile's stored JSON (all of them: at most 48 KiB)
MAX_PROFILES_JSON = 48 * 1024
MAX_PATTERNS = 32  # per SAN kind
MAX_PATTERN = 255
MAX_LIFETIME_HOURS = 3650 * 24
MAX_SANS_LIMIT = 100
MAX_SUBJECT_VALUE = 64  # RFC 5280 upper bound of most DN attributes (ub-common-name etc.)

KEY_TYPES = ("P-256", "P-384", "Ed25519", "RSA")
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
APPROVALS = ("auto", "webhook", "manual")
SAN_KINDS = ("dns", "uri", "email", "ip")

# Key usages an end-entity certificate of a profile may carry (never keyCertSign, cRLSign).
KEY_USAGES = ("digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment", "keyAgreement")
_KEY_USAGE_ALIASES = {"nonRepudiation": "contentCommitment"}
# Extended key usages a profile may grant: device clients, device servers, mail signing.
EKUS = ("clientAuth", "serverAuth", "emailProtection")
# Subject attributes a profile may take from a CSR or put in a template, by their short names.
SUBJECT_ATTRIBUTES = ("CN", "O", "OU", "C", "ST", "L", "serialNumber", "emailAddress", "UID", "DC")
# Template placeholders: {csr.CN} (any attribute above) and the first SAN of a kind.
PLACEHOLDER = re.compile(r"\{([A-Za-z.]+)\}")
SAN_PLACEHOLDERS = {"san.dns": "dns", "san.uri": "uri", "san.email": "email", "san.ip": "ip"}


@dataclass(frozen=True)
class SubjectRule:
    """How the certificate's subject is formed. ``mode`` "csr": the CSR's subject, its attributes
    among ``allowed`` (each at most once, values at most 64 characters), those in ``required``
    present. ``mode`` "template": ``template``'s attributes in order, each value a literal or with
    placeholders ({csr.CN}, {san.dns}, ...); the CSR's subject may hold only attributes the template
    takes from it."""

    mode: str = "csr"
    allowed: tuple[str, ...] = ("CN", "O", "OU", "C", "ST", "L", "serialNumber")
    required: tuple[str, ...] = ("CN",)
    template: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        if self.mode == "template":
            return {"mode": "template", "template": [{k: v} for k, v in self.template]}
        return {"mode": "csr", "allowed": list(self.allowed), "required": list(self.required)}


@dataclass(frozen=True)
class Profile:
    name: str
    key_types: tuple[str, ...] = ("P-256", "P-384", "Ed25519")
    rsa_min_bits: int = MIN_RSA_BITS
    lifetime_hours: int | None = None  # None: the tenant's lifetimeDays
    key_usages: tuple[str, ...] = ("digitalSignature",)
    ekus: tuple[str, ...] = ("clientAuth",)
    subject: SubjectRule = field(default_factory=SubjectRule)
    # SAN patterns by kind; a kind absent: no SAN of that kind may be requested.
    sans: tuple[tuple[str, tuple[str, ...]], ...] = ()
    max_sans: int = 10
    require_san: bool = False
    approval: str | None = None  # auto | webhook | manual; None: the tenant's mode
    description: str | None = None
    builtin: bool = False  # the read-only `seacat` profile

    def san_patterns(self, kind: str) -> tuple[str, ...]:
        return next((patterns for k, patterns in self.sans if k == kind), ())

    def to_json(self) -> dict[str, object]:
        """The stored and shown form (``parse_profile`` reads it back to the same Profile)."""
        shown: dict[str, object] = {
            "name": self.name,
            "keyTypes": list(self.key_types),
            "rsaMinBits": self.rsa_min_bits,
            "lifetimeHours": self.lifetime_hours,
            "keyUsage": list(self.key_usages),
            "extendedKeyUsage": list(self.ekus),
            "subject": self.subject.to_json(),
            "sans": {kind: list(patterns) for kind, patterns in self.sans},
            "maxSans": self.max_sans,
            "requireSan": self.require_san,
            "approval": self.approval,
            "description": self.description,
        }
        if self.builtin:
            shown["builtin"] = True
        return shown

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Profile:
        """The stored form, validated when it was written (``parse_profile``), so read without checks:
        every read of a tenant (each enrolment on ``make run``) reads its profiles."""
        subject = raw["subject"]
        if subject["mode"] == "template":
            rule = SubjectRule(
                mode="template",
                allowed=(),
                required=(),
                template=tuple((k, v) for item in subject["template"] for k, v in item.items()),
            )
        else:
            rule = SubjectRule(mode="csr", allowed=tuple(subject["allowed"]), required=tuple(subject["required"]))
        return cls(
            name=raw["name"],
            key_types=tuple(raw["keyTypes"]),
            rsa_min_bits=raw["rsaMinBits"],
            lifetime_hours=raw["lifetimeHours"],
            key_usages=tuple(raw["keyUsage"]),
            ekus=tuple(raw["extendedKeyUsage"]),
            subject=rule,
            sans=tuple((kind, tuple(patterns)) for kind, patterns in raw["sans"].items()),
            max_sans=raw["maxSans"],
            require_san=raw["requireSan"],
            approval=raw["approval"],
            description=raw["description"],
        )


def seacat_profile(lifetime_days: int) -> Profile:
    """The built-in SeaCat client profile as the profile routes show it (issued by SeaCat CRs only)."""
    return Profile(
        name=SEACAT,
        key_types=("P-256",),
        lifetime_hours=lifetime_days * 24,
        subject=SubjectRule(mode="template", template=(("CN", "{seacat.identity}"),)),
        max_sans=0,
        description="SeaCat clients (SeaCat CRs at /{tenant}/seacat/enroll): CN=<identity>, clientAuth",
        builtin=True,
    )


# -- parsing an admin's JSON ---------------------------------------------------------------------

_PROFILE_KEYS = {
    "name",
    "keyTypes",
    "rsaMinBits",
    "lifetimeHours",
    "lifetimeDays",
    "keyUsage",
    "extendedKeyUsage",
    "subject",
    "sans",
    "maxSans",
    "requireSan",
    "approval",
    "description",
    "builtin",
}


def _fail(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def _names(
    value: object, field: str, allowed: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(f"must be a non-empty list of: {', '.join(allowed)}", field)
    out: list[str] = []
    for index, item in enumerate(value):
        name = (aliases or {}).get(item, item) if isinstance(item, str) else item
        if not isinstance(name, str) or name not in allowed:
            raise _fail(f"must be one of: {', '.join(allowed)}", f"{field}[{index}]")
        if name in out:
            raise _fail("listed twice", f"{field}[{index}]")
        out.append(name)
    return tuple(out)


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"must be a whole number from {low} to {high}", field)
    return value


def _printable(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _fail(f"must be a string of 1 to {max_length} characters", field)
    if not value.isprintable():
        raise _fail("must have no control characters", field)
    return value


def _subject_rule(value: object) -> SubjectRule:
    if value is None:
        return SubjectRule()
    if not isinstance(value, dict):
        raise _fail('must be {"mode": "csr", ...} or {"mode": "template", "template": [...]}', "subject")
    mode = value.get("mode", "csr")
    if mode == "csr":
        unknown = sorted(set(value) - {"mode", "allowed", "required"})
        if unknown:
            raise _fail(f"unknown key {unknown[0]!r}", f"subject.{unknown[0]}")
        names = SUBJECT_ATTRIBUTES
        allowed = _names(value["allowed"], "subject.allowed", names) if "allowed" in value else SubjectRule.allowed
        required: tuple[str, ...] = ()
        if value.get("required") is not None:
            if value["required"] == []:
                required = ()
            else:
                required = _names(value["required"], "subject.required", names)
        elif "required" not in value:
            required = ("CN",) if "CN" in allowed else ()
        for index, name in enumerate(required):
            if name not in allowed:
                raise _fail(f"{name} is required but not allowed", f"subject.required[{index}]")
        return SubjectRule(mode="csr", allowed=allowed, required=required)
    if mode == "template":
        unknown = sorted(set(value) - {"mode", "template"})
        if unknown:
            raise _fail(f"unknown key {unknown[0]!r}", f"subject.{unknown[0]}")
        raw = value.get("template")
        if not isinstance(raw, list) or not raw or len(raw) > 16:
            raise _fail('must be a list of 1 to 16 one-key objects such as {"CN": "{csr.CN}"}', "subject.template")
        template: list[tuple[str, str]] = []
        for index, item in enumerate(raw):
            path = f"subject.template[{index}]"
            if not isinstance(item, dict) or len(item) != 1:
                raise _fail('must be a one-key object such as {"O": "Example"}', path)
            ((name, text),) = item.items()
            if name not in SUBJECT_ATTRIBUTES:
                raise _fail(f"attribute must be one of: {', '.join(SUBJECT_ATTRIBUTES)}", path)
            text = _printable(text, f"{path}.{name}", 255)
            for placeholder in PLACEHOLDER.findall(text):
                source = placeholder.removeprefix("csr.")
                if placeholder not in SAN_PLACEHOLDERS and not (
                    placeholder.startswith("csr.") and source in SUBJECT_ATTRIBUTES
                ):
                    raise _fail(
                        f"unknown placeholder {{{placeholder}}}: use {{csr.<attribute>}} or {{san.dns}}, "
                        "{san.uri}, {san.email}, {san.ip}",
                        f"{path}.{name}",
                    )
            template.append((name, text))
        return SubjectRule(mode="template", allowed=(), required=(), template=tuple(template))
    raise _fail('must be "csr" or "template"', "subject.mode")


DNS_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_DNS_PATTERN = re.compile(rf"(\*\*?\.)?{DNS_LABEL}(\.{DNS_LABEL})*")


def _pattern(kind: str, value: object, field: str) -> str:
    text = _printable(value, field, MAX_PATTERN)
    if not text.isascii() or " " in text:
        raise _fail("must be ASCII without spaces (internationalised names in their IDNA form)", field)
    if kind == "dns":
        text = text.lower()
        if not _DNS_PATTERN.fullmatch(text) or "." not in text.lstrip("*."):
            raise _fail('must be a DNS name, "*.<domain>" or "**.<domain>" with a domain of two labels or more', field)
    elif kind == "email":
        local, at, domain = text.rpartition("@")
        if not at or not local or ("*" in local and local != "*"):
            raise _fail('must be an address, "*@<domain>" or "*@**.<domain>"', field)
        _pattern("dns", domain, field)
        text = f"{local}@{domain.lower()}"
    elif kind == "uri":
        scheme, sep, rest = text.partition("://")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme.lower()) or not rest or rest.startswith("/"):
            raise _fail('must be an absolute URI with a host, e.g. "spiffe://example.org/ns/*/sa/*"', field)
        host, _, path = rest.partition("/")
        if "*" in host:
            raise _fail("the host of a URI pattern must be literal", field)
        if "**" in path and not (path == "**" or path.endswith("/**")) or path.count("**") > 1:
            raise _fail('"**" may only end a URI pattern ("/**")', field)
        text = f"{scheme.lower()}://{host.lower()}" + (f"/{path}" if path or rest.endswith("/") else "")
    else:
        try:
            text = str(ipaddress.ip_network(text, strict=True))
        except ValueError:
            raise _fail("must be an IP address or a network in CIDR form (host bits zero)", field) from None
    return text


def _sans(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _fail('must be an object such as {"dns": ["*.devices.example.com"], "uri": [...]}', "sans")
    out: list[tuple[str, tuple[str, ...]]] = []
    for kind in SAN_KINDS:
        if kind not in value or value[kind] is None:
            continue
        raw = value[kind]
        if not isinstance(raw, list) or len(raw) > MAX_PATTERNS:
            raise _fail(f"must be a list of at most {MAX_PATTERNS} patterns", f"sans.{kind}")
        patterns = tuple(_pattern(kind, item, f"sans.{kind}[{i}]") for i, item in enumerate(raw))
        if patterns:
            out.append((kind, tuple(dict.fromkeys(patterns))))
    unknown = sorted(set(value) - set(SAN_KINDS))
    if unknown:
        raise _fail(f"unknown SAN kind {unknown[0]!r}: use {', '.join(SAN_KINDS)}", f"sans.{unknown[0]}")
    return tuple(out)


def parse_profile(name: str, body: dict[str, Any], *, stored: bool = False) -> Profile:
    """A profile from an admin's JSON (``name`` from the URL; a ``name`` in the body must agree).

    Absent keys take the defaults: key types P-256, P-384 and Ed25519 (RSA only when listed, at least
    ``rsaMinBits`` = 2048), the tenant's lifetime, digitalSignature and clientAuth, the subject from
    the CSR (CN required), no SANs, the tenant's approval mode."""
    if not NAME_RE.fullmatch(name or ""):
        raise _fail(
            "a profile name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter or digit", "name"
        )
    if name == SEACAT and not stored:
        raise _fail("the seacat profile is built in and read-only", "name")
    unknown = sorted(set(body) - _PROFILE_KEYS)
    if unknown:
        raise _fail(f"unknown key {unknown[0]!r}", unknown[0])
    if "name" in body and body["name"] != name:
        raise _fail("must be the profile's name in the path, or absent", "name")
    if body.get("builtin") not in (None, False):
        raise _fail("only the seacat profile is built in", "builtin")
    key_types = _names(body["keyTypes"], "keyTypes", KEY_TYPES) if "keyTypes" in body else Profile.key_types
    rsa_min = _int(body.get("rsaMinBits", MIN_RSA_BITS), "rsaMinBits", MIN_RSA_BITS, 4096)
    if "lifetimeHours" in body and "lifetimeDays" in body:
        raise _fail("give lifetimeHours or lifetimeDays, not both", "lifetimeDays")
    lifetime: int | None = None
    if body.get("lifetimeHours") is not None:
        lifetime = _int(body["lifetimeHours"], "lifetimeHours", 1, MAX_LIFETIME_HOURS)
    elif body.get("lifetimeDays") is not None:
        lifetime = _int(body["lifetimeDays"], "lifetimeDays", 1, MAX_LIFETIME_HOURS // 24) * 24
    key_usages = (
        _names(body["keyUsage"], "keyUsage", KEY_USAGES, _KEY_USAGE_ALIASES)
        if "keyUsage" in body
        else ("digitalSignature",)
    )
    ekus = _names(body["extendedKeyUsage"], "extendedKeyUsage", EKUS) if "extendedKeyUsage" in body else ("clientAuth",)
    subject = _subject_rule(body.get("subject"))
    sans = _sans(body.get("sans"))
    max_sans = _int(body.get("maxSans", 10), "maxSans", 0, MAX_SANS_LIMIT)
    require_san = body.get("requireSan", False)
    if not isinstance(require_san, bool):
        raise _fail("must be true or false", "requireSan")
    if require_san and (not sans or max_sans == 0):
        raise _fail("a profile that requires a SAN must allow some (sans, maxSans)", "requireSan")
    approval = body.get("approval")
    if approval is not None and approval not in APPROVALS:
        raise _fail(f"must be one of: {', '.join(APPROVALS)}, or null (the tenant's mode)", "approval")
    description = body.get("description")
    if description is not None:
        description = _printable(description, "description", 256)
    if subject.mode == "template":
        kinds = {kind for kind, _ in sans}
        for name_, text in subject.template:
            for placeholder in PLACEHOLDER.findall(text):
                if placeholder in SAN_PLACEHOLDERS and SAN_PLACEHOLDERS[placeholder] not in kinds:
                    raise _fail(f"{{{placeholder}}} needs SAN patterns of that kind", f"subject.template.{name_}")
    return Profile(
        name=name,
        key_types=key_types,
        rsa_min_bits=rsa_min,
        lifetime_hours=lifetime,
        key_usages=key_usages,
        ekus=ekus,
        subject=subject,
        sans=sans,
        max_sans=max_sans,
        require_san=require_san,
        approval=approval,
        description=description,
        builtin=stored and name == SEACAT,
    )
