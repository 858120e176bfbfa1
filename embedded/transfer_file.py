"""The transfer file (embedded/transfer.py): JSON lines, its records, its keys under a passphrase.

One JSON object per line, ASCII:

- the header: ``{"format": "seacat-pki-transfer", "version": 3, "created_at", "tenants": [ids],
  "audit": bool, "keys": null | {"kdf": "scrypt", "salt", "n", "r", "p", "cipher": "AES-256-GCM",
  "check"}}``;
- per tenant, in this order: its ``tenant`` line; its ``certificate``, ``serial``, ``identity``,
  ``request`` and ``audit`` lines; with keys, its ``key`` lines: one of ``kind`` ``ca-key`` per CA key
  (``ca_keys_of``: the first key, then each a rotation made), with the key's ``fingerprint`` and
  either ``nonce`` and ``ciphertext`` of AES-256-GCM or, for a key the service no longer uses (its
  secret scheduled for deletion or gone), ``"absent": true``; then ``webhook-secret`` if it has one;
- the end: ``{"type": "end", "counts": {tenant: {type: n}}, "mac" | "sha256": hex}``, the HMAC-SHA256
  (keys: under the passphrase) or SHA-256 (no keys) of every byte before it.

A record line is ``{"type": <type>, <field>: <value>, ...}`` with the fields of the record's class
(chalicelib/domain.py, ``SerialClaim``): times ISO-8601 UTC to the microsecond, bytes base64,
serials lowercase hex, a tenant's configuration as stored, a CA entry with its ``key_secret`` (the
secret's name where it was exported; an import names it anew), ``state`` and ``state_at``.

Version 1 (before CA keys could be rotated) is read too: its CA entries are over the first key and
trusted, its certificates have no final CRL, its one CA key line (the first key's) precedes the
records, and its secrets are bound to version 1. So is version 2 (before PKCS#10 CSRs): its requests
have no ``kind`` nor ``profile`` (SeaCat CRs), its secrets are bound to version 2. A tenant's
configuration carries its certificate profiles, checked as an admin's PUT checks them.

The passphrase gives, through scrypt (its cost in the header), 64 bytes: an AES-256-GCM key for the
secrets (each with a random nonce, bound to format, version, tenant, kind and fingerprint as
associated data, so no secret opens under another tenant or kind) and an HMAC key for the end line.
``check`` is a known text sealed with it: a wrong passphrase is told apart from a changed file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import getpass
import hashlib
import hmac
import json
import os
import sys
import types
import typing
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chalicelib.domain import (
    AuditEvent,
    CaCert,
    CaState,
    CertificateKind,
    CertificateRecord,
    IdentityRecord,
    RequestKind,
    RequestRecord,
    RequestState,
    Tenant,
    TenantConfig,
)
from chalicelib.store.keys import iso
from chalicelib.store.transfer import Record, SerialClaim

FORMAT = "seacat-pki-transfer"
# 2: each CA entry's key secret, state and state_at, certificates' final CRLs, a key line per CA key
# (absent ones marked) after the tenant's records. 1 (before CA keys could be rotated) is still read.
# 3: requests' kind (cr or csr) and profile; 2 is still read.
VERSION = 3
READ_VERSIONS = (1, 2, 3)
PASSPHRASE_ENV = "SEACAT_TRANSFER_PASSPHRASE"
MIN_PASSPHRASE = 12
SCRYPT_N = 2**17  # 128 MiB and about a second here, once per export and once per import
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_N_ACCEPTED = (2**14, 2**20)  # what an import derives with (a file names its own cost)
CA_KEY = "ca-key"
ABSENT_CA_KEY = "absent-ca-key"  # the count of the CA keys a file marks absent (see CaKey.needed)
SECRET_KINDS = ("webhook-secret",)
_CHECK = b"seacat-pki transfer: this passphrase opens the keys of this file"
_KEY_FIELDS = frozenset({"type", "tenant_id", "kind", "fingerprint"})

# A record's type in the file, and its class.
TYPES: dict[str, type[Any]] = {
    "tenant": Tenant,
    "certificate": CertificateRecord,
    "serial": SerialClaim,
    "identity": IdentityRecord,
    "request": RequestRecord,
    "audit": AuditEvent,
}
NAMES = {cls: name for name, cls in TYPES.items()}
_HEX_INTS = frozenset({"serial", "cert_serial"})  # serials are lowercase hex in the file, as in the stores


class TransferError(RuntimeError):
    """The transfer cannot be done; the message says why."""


class FileError(TransferError):
    """The file is not a whole, unchanged export of this tool (or not of a version it reads)."""


# -- records as JSON ---------------------------------------------------------------------------------


def _encode(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value  # a StrEnum is a str
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, int):
        return f"{value:x}" if name in _HEX_INTS else value
    if isinstance(value, frozenset):
        return [f"{s:x}" for s in sorted(value)]
    if isinstance(value, TenantConfig):
        return value.to_json()
    if isinstance(value, CaCert):
        return {
            "cert_id": value.cert_id,
            "der": _encode("der", value.der),
            "created_at": iso(value.created_at),
            "key_secret": value.key_secret,
            "state": str(value.state),
            "state_at": iso(value.state_at) if value.state_at else None,
        }
    if isinstance(value, tuple):
        return [_encode(name, v) for v in value]
    if isinstance(value, float | dict):
        return value
    raise TypeError(f"{name}: cannot write a {type(value).__name__}")


def encode(record: Record) -> dict[str, Any]:
    """A record as one line of the file: its type, then its fields."""
    out: dict[str, Any] = {"type": NAMES[type(record)]}
    for f in fields(record):
        out[f.name] = _encode(f.name, getattr(record, f.name))
    return out


_HINTS: dict[type[Any], dict[str, Any]] = {cls: typing.get_type_hints(cls) for cls in TYPES.values()}


def _bad(name: str, why: str) -> ValueError:
    return ValueError(f"{name}: {why}")


def _time(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise _bad(name, "not a time")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise _bad(name, "a time without its offset")
    return at


def _bytes(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad(name, "not base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _bad(name, "not base64") from None


def _hex(name: str, value: Any) -> int:
    if not isinstance(value, str) or not value or any(c not in "0123456789abcdef" for c in value):
        raise _bad(name, "not lowercase hex")
    return int(value, 16)


def _decode(name: str, hint: Any, value: Any, version: int) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None, the only unions of the records
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is datetime:
        return _time(name, value)
    if hint is bytes:
        return _bytes(name, value)
    if hint is int and name in _HEX_INTS:
        return _hex(name, value)
    if hint in (CertificateKind, RequestState, RequestKind):
        return hint(value)
    if hint is TenantConfig:
        if not isinstance(value, dict):
            raise _bad(name, "not an object")
        _check_profiles(name, value.get("profiles"))
        return TenantConfig.from_json(value)
    if origin is frozenset:
        if not isinstance(value, list):
            raise _bad(name, "not a list")
        return frozenset(_hex(name, v) for v in value)
    if origin is tuple:
        if not isinstance(value, list):
            raise _bad(name, "not a list")
        if args[0] is CaCert:
            return tuple(_ca(name, v, version) for v in value)
        return tuple(_pair(name, v) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(name, "not an object")
        return value
    expected = {str: (str,), int: (int,), bool: (bool,), float: (int, float)}.get(hint)
    if expected is None:
        raise _bad(name, f"a field of type {hint} is not read")
    if not isinstance(value, expected) or (hint is not bool and isinstance(value, bool)):
        raise _bad(name, f"expected {hint.__name__}")
    return float(typing.cast(float, value)) if hint is float else value


def _check_profiles(name: str, profiles: Any) -> None:
    """A configuration's certificate profiles, as an admin's PUT checks them (the stores read them unchecked)."""
    from chalicelib.ca.profiles import parse_profile
    from chalicelib.errors import InvalidInput

    if profiles is None:
        return
    if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
        raise _bad(name, "its profiles are not a list of objects")
    for raw in profiles:
        try:
            parsed = parse_profile(str(raw.get("name", "")), dict(raw), stored=True)
        except InvalidInput as exc:
            raise _bad(name, f"a profile's {exc.field}: {exc.message}") from None
        if parsed.to_json() != raw:
            raise _bad(name, f"profile {parsed.name} is not in its stored form")


_CA_FIELDS = {
    1: {"cert_id", "der", "created_at"},
    2: {"cert_id", "der", "created_at", "key_secret", "state", "state_at"},
    3: {"cert_id", "der", "created_at", "key_secret", "state", "state_at"},
}
_STORED_CA_STATES = {str(s): s for s in (CaState.TRUSTED, CaState.RETIRED, CaState.REVOKED)}


def _ca(name: str, value: Any, version: int) -> CaCert:
    """A CA entry; one of version 1 (before CA keys could be rotated) is over the first key and trusted."""
    if not isinstance(value, dict) or set(value) != _CA_FIELDS[version] or not isinstance(value["cert_id"], str):
        raise _bad(name, "not a CA certificate entry")
    ca = CaCert(value["cert_id"], _bytes(name, value["der"]), _time(name, value["created_at"]))
    if version == 1:
        return ca
    key_secret, state, state_at = value["key_secret"], value["state"], value["state_at"]
    if not (key_secret is None or (isinstance(key_secret, str) and key_secret)):
        raise _bad(name, "a CA certificate entry's key_secret is not a secret's name")
    if state not in _STORED_CA_STATES:
        raise _bad(name, f"a CA certificate entry's state is one of {', '.join(_STORED_CA_STATES)}")
    return replace(
        ca,
        key_secret=key_secret,
        state=_STORED_CA_STATES[state],
        state_at=None if state_at is None else _time(name, state_at),
    )


def _pair(name: str, value: Any) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise _bad(name, "not a list of [name, value] pairs")
    return value[0], value[1]


# The fields a record of version 1 has not (they were added with the CA lifecycle): their defaults.
_SINCE_2: dict[type[Any], frozenset[str]] = {CertificateRecord: frozenset({"final_crl"})}
# ... and of versions 1 and 2 (added with PKCS#10 CSRs).
_SINCE_3: dict[type[Any], frozenset[str]] = {RequestRecord: frozenset({"kind", "profile"})}


def decode(line: dict[str, Any], version: int = VERSION) -> Record:
    """A record from its line of a file of ``version`` (ValueError naming the field for anything that
    is not one)."""
    cls = TYPES.get(line.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"not a record type: {line.get('type')!r}")
    hints = _HINTS[cls]
    names = {f.name for f in fields(cls)}
    if version == 1:
        names -= _SINCE_2.get(cls, frozenset())
    if version <= 2:
        names -= _SINCE_3.get(cls, frozenset())
    extra = sorted(set(line) - names - {"type"})
    if extra:
        raise ValueError(f"a {line['type']} record has no field {extra[0]!r}")
    missing = sorted(names - set(line))
    if missing:
        raise ValueError(f"a {line['type']} record without its field {missing[0]!r}")
    record: Record = cls(**{n: _decode(n, hints[n], line[n], version) for n in names})
    return record


def tenant_of(record: Record) -> str | None:
    return record.tenant if isinstance(record, AuditEvent) else record.tenant_id


# -- keys under a passphrase -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sealing:
    """The keys derived from the passphrase: one encrypts the secrets, one authenticates the file."""

    aead: AESGCM
    mac_key: bytes = field(repr=False)

    @classmethod
    def new(cls, passphrase_text: str, n: int) -> tuple[Sealing, dict[str, Any]]:
        """Keys from the passphrase under a new salt, and the header's ``keys`` entry that derives them again."""
        salt = os.urandom(16)
        sealing = cls.derive(passphrase_text, salt, n, SCRYPT_R, SCRYPT_P)
        header = {
            "kdf": "scrypt",
            "salt": _encode("", salt),
            "n": n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "cipher": "AES-256-GCM",
            "check": sealing.seal(_CHECK, b"check"),
        }
        return sealing, header

    @classmethod
    def derive(cls, passphrase: str, salt: bytes, n: int, r: int, p: int) -> Sealing:
        material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))
        return cls(AESGCM(material[:32]), material[32:])

    def seal(self, value: bytes, context: bytes) -> dict[str, str]:
        nonce = os.urandom(12)
        return {"nonce": _encode("", nonce), "ciphertext": _encode("", self.aead.encrypt(nonce, value, context))}

    def open(self, sealed: dict[str, Any], context: bytes) -> bytes:
        return self.aead.decrypt(
            _bytes("nonce", sealed.get("nonce")), _bytes("ciphertext", sealed.get("ciphertext")), context
        )


def key_context(tenant_id: str, kind: str, fingerprint: str | None, version: int = VERSION) -> bytes:
    return "\0".join((FORMAT, str(version), tenant_id, kind, fingerprint or "")).encode("utf-8")


# -- a tenant's CA keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaKey:
    """One of a tenant's CA keys: its first (``Tenant.key_secret``, ``Tenant.key_fingerprint``) or one
    a rotation made, with the CA certificates over it (``Tenant.key_of``)."""

    fingerprint: str
    secret: str  # the name of its secret where the tenant was read
    first: bool
    cas: tuple[CaCert, ...]
    # The service still uses it: to issue or re-certify (a CA certificate over it in trust, or the first
    # key of a tenant without one yet), or to sign a retired CA certificate's CRL on demand (one whose
    # final CRL is not stored). A key of revoked CA certificates, or of retired ones whose final CRLs
    # are all stored, is released: its secret is scheduled for deletion, or gone (chalicelib/service/cas.py).
    needed: bool


def ca_keys_of(tenant: Tenant, final_crls: Collection[str]) -> list[CaKey]:
    """The tenant's CA keys, its first first, then in the order of its CA certificates; ``final_crls``:
    the ids of its CA certificates whose final CRL is stored. ValueError if the CA certificates over
    one secret are not over one key, or another secret holds the first key or another's."""
    from cryptography import x509

    from chalicelib.ca.keys import public_key_fingerprint

    def fingerprint_of(ca: CaCert) -> str:
        public = x509.load_der_x509_certificate(ca.der).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError(f"CA certificate {ca.cert_id} is not over an EC key")
        return public_key_fingerprint(public)

    over: dict[str, list[CaCert]] = {tenant.key_secret: []}
    for ca in tenant.cas:
        over.setdefault(tenant.key_of(ca), []).append(ca)
    found: list[CaKey] = []
    for secret, cas in over.items():
        first = secret == tenant.key_secret
        if first:
            fingerprint = tenant.key_fingerprint  # what the tenant item says; its certificates are over it
        else:
            prints = {fingerprint_of(ca) for ca in cas}
            fingerprint = prints.pop()
            if prints:
                raise ValueError(f"the CA certificates over secret {secret} are not over one key")
        if any(k.fingerprint == fingerprint for k in found):
            raise ValueError(f"secret {secret} holds a key another secret of the tenant holds too")
        in_use = not cas or any(
            ca.in_trust or (ca.state == CaState.RETIRED and ca.cert_id not in final_crls) for ca in cas
        )
        found.append(CaKey(fingerprint, secret, first, tuple(cas), in_use))
    return found


def passphrase(*, confirm: bool) -> str:
    """SEACAT_TRANSFER_PASSPHRASE, or asked on the terminal (twice for a new file); never an argument,
    which other users of the machine could read in the process list."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given is None:
        if not sys.stdin.isatty():
            raise TransferError(f"the file's keys need a passphrase: set {PASSPHRASE_ENV}, or run this in a terminal")
        given = getpass.getpass("Passphrase for the keys in the file: ")
        if confirm and getpass.getpass("The same passphrase again: ") != given:
            raise TransferError("the two passphrases differ")
    if confirm and len(given) < MIN_PASSPHRASE:
        raise TransferError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    return given


# -- writing a file ------------------------------------------------------------------------------------


class Writer:
    """Lines to a new owner-only file, with the running checksum of everything written."""

    def __init__(self, path: Path, mac_key: bytes | None) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.digest = hmac.new(mac_key, digestmod=hashlib.sha256) if mac_key else hashlib.sha256()
        self.buffer: list[bytes] = []
        self.size = 0

    def line(self, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
        self.digest.update(data)
        self.buffer.append(data)
        self.size += len(data)
        if self.size > 1 << 20:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.buffer)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.buffer, self.size = [], 0

    def finish(self, end: dict[str, Any]) -> None:
        """The end line, then the file in place (FileExistsError if one is there already)."""
        end["mac" if isinstance(self.digest, hmac.HMAC) else "sha256"] = self.digest.hexdigest()
        self.buffer.append(json.dumps(end, separators=(",", ":")).encode("ascii") + b"\n")
        self.flush()
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.link(self.tmp, self.path)  # never over an existing file
        os.unlink(self.tmp)
        from scripts.datadir import fsync_dir

        fsync_dir(self.path.parent)

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


# -- reading a file ------------------------------------------------------------------------------------


@dataclass
class TenantKeys:
    # Each CA key (of ``ca_keys_of``) by its fingerprint; None: the file marks it absent (not needed).
    ca_keys: dict[str, ec.EllipticCurvePrivateKey | None] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Checked:
    """What the first reading of a file found: it holds, and this is what it holds."""

    header: dict[str, Any]
    version: int
    tenants: dict[str, Tenant]
    ca_keys: dict[str, list[CaKey]]  # per tenant, as its records (its CA entries, final CRLs) have them
    keys: dict[str, TenantKeys]  # per tenant: the keys in the file (none without keys)
    counts: dict[str, Counter[str]]
    line_digests: list[bytes]  # SHA-256 of each line: the second reading must find the same lines


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def _json(number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise FileError(f"line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise FileError(f"line {number} is not a JSON object")
    return value


def check_file(path: Path, passphrase_for: Callable[[], str]) -> Checked:
    """Read the whole file: the header, every record, every key (under the passphrase, asked only if the
    file has keys), the end line's counts and checksum. FileError for anything that does not hold."""
    from chalicelib.ca import keys as crypto_keys
    from chalicelib.errors import InvalidInput

    lines = _lines(path)
    try:
        number, raw = next(lines)
    except StopIteration:
        raise FileError(f"{path} is empty") from None
    header = _json(number, raw)
    if header.get("format") != FORMAT:
        raise FileError(f"{path} is not a {FORMAT} file")
    version = header.get("version")
    if type(version) is not int or version not in READ_VERSIONS:
        raise FileError(
            f"{path} is of version {version!r}; this release reads versions "
            f"{', '.join(map(str, READ_VERSIONS))} (a newer file needs a newer release to import it)"
        )
    declared = header.get("tenants")
    if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared) or not declared:
        raise FileError("the header names no tenants")
    sealing: Sealing | None = None
    keys_header = header.get("keys")
    if keys_header is not None:
        sealing = _open_keys(keys_header, passphrase_for())
    digest = hmac.new(sealing.mac_key, digestmod=hashlib.sha256) if sealing else hashlib.sha256()
    digest.update(raw)
    line_digests = [hashlib.sha256(raw).digest()]
    tenants: dict[str, Tenant] = {}
    found_keys: dict[str, TenantKeys] = {}
    counts: dict[str, Counter[str]] = {}
    cert_ids: dict[str, set[str]] = {}  # per tenant: its certificates (serial claims name them)
    ca_ders: dict[str, dict[str, bytes]] = {}  # per tenant: its CA certificates (the tenant item lists them)
    final_crls: dict[str, set[str]] = {}  # per tenant: its CA certificates with a final CRL
    fingerprints: dict[str, set[str]] = {}  # per tenant: its CA keys' fingerprints (the key lines name them)
    current: str | None = None
    end: dict[str, Any] | None = None
    for number, raw in lines:
        if end is not None:
            raise FileError(f"line {number} follows the end line")
        line = _json(number, raw)
        line_digests.append(hashlib.sha256(raw).digest())
        kind = line.get("type")
        if kind == "end":
            end = line
            continue
        digest.update(raw)
        try:
            if kind == "key":
                if sealing is None:
                    raise ValueError("a key in a file whose header has no keys")
                tenant_id = line.get("tenant_id")
                if tenant_id != current or current is None:
                    raise ValueError("a key away from its tenant")
                found = found_keys.setdefault(current, TenantKeys())
                secret_kind = line.get("kind")
                if secret_kind == CA_KEY:
                    fingerprint = line.get("fingerprint")
                    if not isinstance(fingerprint, str) or fingerprint not in fingerprints[current]:
                        raise ValueError("a CA key that is not one of the tenant's")
                    if fingerprint in found.ca_keys:
                        raise ValueError("a CA key that comes twice")
                    if version >= 2 and "absent" in line:
                        if line.get("absent") is not True or set(line) != {*_KEY_FIELDS, "absent"}:
                            raise ValueError("an absent CA key with more than its fingerprint")
                        found.ca_keys[fingerprint] = None
                        counts[current][ABSENT_CA_KEY] += 1
                        continue
                    pem = sealing.open(line, key_context(current, CA_KEY, fingerprint, version))
                    key = crypto_keys.load_ca_private_key_pem(pem, curves=crypto_keys.ROTATION_CURVES)
                    if crypto_keys.public_key_fingerprint(key.public_key()) != fingerprint:
                        raise ValueError("a CA key that is not the one its fingerprint names")
                    found.ca_keys[fingerprint] = key
                elif secret_kind in SECRET_KINDS and secret_kind not in found.secrets:
                    context = key_context(current, str(secret_kind), None, version)
                    found.secrets[str(secret_kind)] = sealing.open(line, context)
                else:
                    raise ValueError(f"not a kind of key: {secret_kind!r}")
                counts[current][str(secret_kind)] += 1
                continue
            record = decode(line, version)
            if isinstance(record, Tenant):
                if record.tenant_id not in declared or record.tenant_id in tenants:
                    raise ValueError(f"tenant {record.tenant_id} is not declared in the header, or comes twice")
                current = record.tenant_id
                tenants[current] = record
                counts[current] = Counter()
                cert_ids[current], ca_ders[current], final_crls[current] = set(), {}, set()
                fingerprints[current] = {k.fingerprint for k in ca_keys_of(record, ())}
            elif current is None or tenant_of(record) != current:
                raise ValueError("a record away from its tenant")
            elif isinstance(record, CertificateRecord):
                cert_ids[current].add(record.cert_id)
                if record.kind == CertificateKind.CA:
                    ca_ders[current][record.cert_id] = record.der
                    if record.final_crl is not None:
                        final_crls[current].add(record.cert_id)
            elif isinstance(record, SerialClaim) and record.cert_id not in cert_ids[current]:
                raise ValueError("a serial claim of no certificate in the file")
            counts[current][str(line["type"])] += 1
        except FileError:
            raise
        except (ValueError, TypeError, KeyError, InvalidInput, InvalidTag) as exc:
            if isinstance(exc, InvalidTag):
                raise FileError(f"line {number}: a key that does not open: the file was changed") from None
            raise FileError(f"line {number}: {exc}") from None
    if end is None:
        raise FileError(f"{path} has no end line: it is cut short")
    expected = end.get("mac" if sealing else "sha256")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, digest.hexdigest()):
        raise FileError(f"{path} does not match its checksum: it was changed or damaged")
    if end.get("counts") != {t: dict(c) for t, c in counts.items()}:
        raise FileError(f"{path} does not hold what its end line counts")
    held: dict[str, list[CaKey]] = {}
    for tenant_id in declared:
        tenant = tenants.get(tenant_id)
        if tenant is None:
            raise FileError(f"tenant {tenant_id} is declared but not in the file")
        for ca in tenant.cas:
            if ca_ders[tenant_id].get(ca.cert_id) != ca.der:
                raise FileError(f"tenant {tenant_id}: its CA certificate {ca.cert_id} is not in the file")
        held[tenant_id] = ca_keys_of(tenant, final_crls[tenant_id])
        if sealing is None:
            continue
        found = found_keys.get(tenant_id, TenantKeys())
        for ca_key in held[tenant_id]:
            if ca_key.fingerprint not in found.ca_keys:
                raise FileError(f"tenant {tenant_id} has no line for its CA key {ca_key.fingerprint} in the file")
            if ca_key.needed and found.ca_keys[ca_key.fingerprint] is None:
                raise FileError(
                    f"tenant {tenant_id}: its CA key {ca_key.fingerprint} is in use, but the file marks it absent"
                )
    return Checked(header, version, tenants, held, found_keys, counts, line_digests)


def _open_keys(keys_header: Any, passphrase_text: str) -> Sealing:
    try:
        n, r, p = (int(keys_header[k]) for k in ("n", "r", "p"))
        if keys_header["kdf"] != "scrypt" or keys_header["cipher"] != "AES-256-GCM":
            raise ValueError
        salt = _bytes("salt", keys_header["salt"])
        check = keys_header["check"]
    except (KeyError, TypeError, ValueError):
        raise FileError("the header's keys entry is not one this release reads") from None
    if not (SCRYPT_N_ACCEPTED[0] <= n <= SCRYPT_N_ACCEPTED[1] and (r, p) == (SCRYPT_R, SCRYPT_P)):
        raise FileError(f"the header asks for scrypt n={n} r={r} p={p}, outside what this release derives with")
    sealing = Sealing.derive(passphrase_text, salt, n, r, p)
    try:
        if sealing.open(check, b"check") != _CHECK:
            raise InvalidTag
    except (InvalidTag, ValueError):
        raise TransferError("the passphrase does not open this file's keys") from None
    return sealing


def records_of(path: Path, checked: Checked) -> Iterator[Record]:
    """The file's records again (keys and the end line aside), each line the one the check read."""
    count = 0
    for number, raw in _lines(path):
        count = number
        if number > len(checked.line_digests) or hashlib.sha256(raw).digest() != checked.line_digests[number - 1]:
            raise FileError(f"line {number} changed since the file was checked")
        if number == 1:
            continue
        line = json.loads(raw)
        if line.get("type") in ("key", "end"):
            continue
        yield decode(line, checked.version)
    if count != len(checked.line_digests):
        raise FileError(f"{path} was cut short since it was checked")
