"""SeaCat G3 certificate request (CR) decoder and verifier (server side).

The CR is a small TeskaLabs DER structure, not PKCS#10 (see the protocol notes, §3)::

    CR  = 30 L { A0 L {TBS...}, A1 0A { 80 08 <ecdsa-with-SHA256> }, 82 L <DER ECDSA sig> }
    TBS = 80 02 1902, 81 L <application>, 82 L <createdAt>, 83 L <validTo>,
          A4 L { A0 L { 80 <ecPublicKey>, 81 <prime256v1> }, 81 L 00 04 X Y },
          [A5 L { 30 L { 80 L key, 81 L value } ... }]

The signature covers the ``A0`` TLV of the TBS *exactly as received* (tag, length octets
and content); it is sliced out of the received buffer and never re-encoded.

This is the only server module that uses ``cryptography.hazmat.asn1`` (the declarative
decoder is young; keep its use contained here). The module is pure: no AWS or web imports.
Every rejection raises :class:`~chalicelib.errors.InvalidInput` (``field="cr"``), or
:class:`~chalicelib.errors.PayloadTooLarge` for an oversized body; nothing else escapes
for any ``bytes`` input.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import PublicKeyAlgorithmOID, SignatureAlgorithmOID

from chalicelib.errors import InvalidInput, PayloadTooLarge

__all__ = [
    "IDENTITY_RE",
    "MAX_CR_SIZE",
    "SEACAT_CR_VERSION",
    "SeaCatRequest",
    "decode_cr",
    "identity_from_point",
    "identity_of_public_key",
]

MAX_CR_SIZE = 16 * 1024
# Bounds of the decoded fields (the clients' own: Android package names and iOS bundle ids are far
# shorter; the known attributes are OS/Client plus a few app items, the Android demo's longest 95).
MAX_APPLICATION = 255
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 1024
MAX_RAW_TIME = 32  # createdAt/validTo are kept raw for display (UTCTime is 13 characters)
SEACAT_CR_VERSION = 0x1902  # 6402, sent by every known client
# ``\Z`` rather than ``$``: ``$`` also matches before a trailing newline, so with ``$``
# ``IDENTITY_RE.match("HDKXPDREZADFK4G2\n")`` would succeed.
IDENTITY_RE = re.compile(r"^[A-Z2-7]{16}\Z")

_FIELD = "cr"
_POINT_LEN = 65  # 04 || X(32) || Y(32)
_TAG_SEQUENCE = 0x30
_TAG_TBS = 0xA0  # [0] constructed

_OID_EC_PUBLIC_KEY = PublicKeyAlgorithmOID.EC_PUBLIC_KEY  # 1.2.840.10045.2.1
_OID_PRIME256V1 = ec.EllipticCurveOID.SECP256R1  # 1.2.840.10045.3.1.7
_OID_ECDSA_SHA256 = SignatureAlgorithmOID.ECDSA_WITH_SHA256  # 1.2.840.10045.4.3.2


# --- declarative schema (spec §3.1; every component carries an IMPLICIT context tag) ---


@asn1.sequence
class _AlgorithmId:
    algorithm: Annotated[x509.ObjectIdentifier, asn1.Implicit(0)]
    parameters: Annotated[x509.ObjectIdentifier | None, asn1.Implicit(1)]


@asn1.sequence
class _PublicKeyInfo:
    algorithm: Annotated[_AlgorithmId, asn1.Implicit(0)]
    point: Annotated[asn1.BitString, asn1.Implicit(1)]


@asn1.sequence
class _Attribute:  # SEQUENCE OF elements keep their universal 30 tag
    key: Annotated[bytes, asn1.Implicit(0)]
    value: Annotated[bytes, asn1.Implicit(1)]


@asn1.sequence
class _TBSRequest:
    version: Annotated[int, asn1.Implicit(0)]
    application: Annotated[bytes, asn1.Implicit(1)]
    # createdAt/validTo: opaque bytes, not UTCTime. Clients write local time + "Z", older
    # builds leak AM/PM or non-ASCII digits; they are never a reason to reject (§3.5).
    created_at: Annotated[bytes | None, asn1.Implicit(2)]
    valid_to: Annotated[bytes | None, asn1.Implicit(3)]
    public_key_info: Annotated[_PublicKeyInfo, asn1.Implicit(4)]
    attributes: Annotated[list[_Attribute] | None, asn1.Implicit(5)]  # absent == empty


@asn1.sequence
class _CertificateRequest:
    tbs: Annotated[_TBSRequest, asn1.Implicit(0)]
    signature_algorithm: Annotated[_AlgorithmId, asn1.Implicit(1)]
    signature: Annotated[bytes, asn1.Implicit(2)]  # OCTET STRING holding DER Ecdsa-Sig-Value


# --- public API ---


@dataclass(frozen=True)
class SeaCatRequest:
    """A decoded SeaCat CR whose signature has been verified."""

    der: bytes
    tbs: bytes  # the signed slice: the A0 TLV exactly as received
    version: int
    application: str
    created_at_raw: str
    valid_to_raw: str
    # Key objects are unhashable; equality is carried by ``point``.
    public_key: ec.EllipticCurvePublicKey = field(compare=False, repr=False)
    point: bytes
    attributes: tuple[tuple[str, str], ...]
    signature: bytes
    identity: str

    @functools.cached_property
    def cr_id(self) -> str:
        """Lowercase hex SHA-384 of the CR DER (96 characters); computed once."""
        return hashlib.sha384(self.der).hexdigest()


def identity_from_point(point: bytes) -> str:
    """SeaCat identity: first 16 chars of Base32(SHA-384(04 || X || Y)).

    ``point`` must be the 65-byte uncompressed point, not a SubjectPublicKeyInfo (hashing
    the SPKI gives a different, wrong identity); anything else is a programming error.
    """
    if len(point) != _POINT_LEN or point[0] != 0x04:
        raise ValueError("identity needs the 65-byte uncompressed EC point (04||X||Y)")
    # 16 Base32 characters are exactly the first 10 bytes (80 bits) of the digest: encode only those.
    return base64.b32encode(hashlib.sha384(point).digest()[:10]).decode("ascii")


def identity_of_public_key(public_key: ec.EllipticCurvePublicKey) -> str:
    """SeaCat identity of a P-256 public key (e.g. from a certificate)."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise ValueError("SeaCat identities are defined for P-256 keys only")
    point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return identity_from_point(point)


def decode_cr(der: bytes) -> SeaCatRequest:
    """Parse and verify a SeaCat CR (checklist of spec §3.7).

    Raises ``PayloadTooLarge`` when ``der`` exceeds ``MAX_CR_SIZE`` and ``InvalidInput``
    (``field="cr"``, short reason) for every other defect, including a bad signature.
    Never rejects because of createdAt/validTo.
    """
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise _invalid("request body must be bytes")
    der = bytes(der)
    if len(der) > MAX_CR_SIZE:
        raise PayloadTooLarge(f"certificate request exceeds {MAX_CR_SIZE} bytes", field=_FIELD)
    if not der:
        raise _invalid("empty certificate request")

    tbs_slice = _signed_slice(der)

    try:
        cr: _CertificateRequest = asn1.decode_der(_CertificateRequest, der)
    except ValueError:
        # Strict DER: rejects trailing data, non-minimal lengths/integers, wrong tags,
        # missing or extra components, unused-bits > 7, bad OIDs.
        raise _invalid("truncated or malformed DER") from None
    except Exception:
        raise _invalid("undecodable certificate request") from None

    tbs = cr.tbs
    if tbs.version != SEACAT_CR_VERSION:
        raise _invalid(f"unsupported version (expected {SEACAT_CR_VERSION})")

    key_alg = tbs.public_key_info.algorithm
    if key_alg.algorithm != _OID_EC_PUBLIC_KEY:
        raise _invalid("unsupported public key algorithm (expected ecPublicKey)")
    if key_alg.parameters != _OID_PRIME256V1:
        raise _invalid("unsupported curve (expected prime256v1)")

    bit_string = tbs.public_key_info.point
    # hazmat.asn1 accepts any DER-valid unused-bits count (0..7): check by hand.
    if bit_string.padding_bits() != 0:
        raise _invalid("public key BIT STRING must have 0 unused bits")
    point = bit_string.as_bytes()
    if len(point) != _POINT_LEN or point[0] != 0x04:
        raise _invalid("public key must be an uncompressed P-256 point (65 bytes, 04...)")
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, UnsupportedAlgorithm):
        raise _invalid("public key point is not on the P-256 curve") from None

    sig_alg = cr.signature_algorithm
    if sig_alg.algorithm != _OID_ECDSA_SHA256:
        raise _invalid("unsupported signature algorithm (expected ecdsa-with-SHA256)")
    if sig_alg.parameters is not None:
        raise _invalid("signature algorithm must not have parameters")

    signature = cr.signature
    try:
        public_key.verify(signature, tbs_slice, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise _invalid("signature does not verify") from None

    # The decoded fields are stored beside the DER, shown to admins and sent to the webhook: bound
    # them, so a 16 KiB CR cannot become a request item (and audit event) many times its size.
    if len(tbs.application) > MAX_APPLICATION:
        raise _invalid(f"application longer than {MAX_APPLICATION} bytes")
    raw_attributes = tbs.attributes or []
    if len(raw_attributes) > MAX_ATTRIBUTES:
        raise _invalid(f"more than {MAX_ATTRIBUTES} attributes")
    for attribute in raw_attributes:
        if len(attribute.key) > MAX_ATTRIBUTE_KEY or len(attribute.value) > MAX_ATTRIBUTE_VALUE:
            raise _invalid(f"an attribute longer than {MAX_ATTRIBUTE_KEY} (key) or {MAX_ATTRIBUTE_VALUE} (value) bytes")
    attributes = tuple((_ascii(attribute.key), _ascii(attribute.value)) for attribute in raw_attributes)
    return SeaCatRequest(
        der=der,
        tbs=tbs_slice,
        version=tbs.version,
        application=_printable(tbs.application.decode("utf-8", "replace")),
        created_at_raw=_ascii((tbs.created_at or b"")[:MAX_RAW_TIME]),
        valid_to_raw=_ascii((tbs.valid_to or b"")[:MAX_RAW_TIME]),
        public_key=public_key,
        point=point,
        attributes=attributes,
        signature=signature,
        identity=identity_from_point(point),
    )


# --- helpers ---


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(reason, field=_FIELD)


# Printable ASCII maps to itself, every other byte to '?': one C-level pass, not a Python loop per byte.
_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x3F for b in range(256))


# Controls, and the format and line/paragraph separator characters (U+202E and the other bidi
# overrides and isolates, U+200B, U+2028): they would reorder, hide or break the text where an
# administrator reads it (the console, the CLI, a webhook's log).
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp"))
_ASCII_CONTROLS = {c: "?" for c in (*range(0x20), 0x7F)}


def _printable(text: str) -> str:
    """The application name with each control, format or line-separator character as '?'."""
    if text.isascii():  # the usual name: only the C0 controls and DEL can be hidden ones
        return text.translate(_ASCII_CONTROLS)
    return "".join("?" if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def _ascii(value: bytes) -> str:
    """Printable ASCII as sent; anything else becomes '?' (as Android's US-ASCII encoding does), so
    device-chosen bytes reach logs, the console and the webhook as one harmless character each."""
    return value.translate(_PRINTABLE).decode("ascii")


def _read_header(buf: bytes, offset: int) -> tuple[int, int, int]:
    """Read the DER TLV header at ``offset``: (identifier octet, content start, content end).

    Low-tag-number form only, definite minimal lengths, content within ``buf``.
    """
    size = len(buf)
    if offset + 2 > size:
        raise _invalid("truncated or malformed DER")
    tag = buf[offset]
    if tag & 0x1F == 0x1F:
        raise _invalid("truncated or malformed DER")
    first = buf[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _invalid("indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or start + count > size:  # > 4 octets cannot fit under MAX_CR_SIZE
            raise _invalid("truncated or malformed DER")
        length = int.from_bytes(buf[start : start + count], "big")
        if buf[start] == 0 or length < 0x80:
            raise _invalid("non-minimal DER length")
        start += count
    end = start + length
    if end > size:
        raise _invalid("truncated or malformed DER")
    return tag, start, end


def _signed_slice(der: bytes) -> bytes:
    """The TBS element (tag + length + content) exactly as received."""
    tag, outer_start, outer_end = _read_header(der, 0)
    if tag != _TAG_SEQUENCE:
        raise _invalid("certificate request is not a DER SEQUENCE")
    if outer_end != len(der):
        raise _invalid("trailing bytes after the certificate request")
    tbs_tag, _, tbs_end = _read_header(der, outer_start)
    if tbs_tag != _TAG_TBS:
        raise _invalid("tbsRequest must be a constructed [0] element (A0)")
    if tbs_end > outer_end:  # unreachable after the checks above; kept as a guard
        raise _invalid("truncated or malformed DER")
    return der[outer_start:tbs_end]
