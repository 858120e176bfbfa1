"""EST's wire format (RFC 7030 §4): base64 PKCS#10 in, base64 PKCS#7 certs-only out, base64 CsrAttrs.

No HTTP here: the routes (chalicelib/api/est.py) hand bodies in and take bytes and media types out.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from chalicelib.errors import InvalidInput, PayloadTooLarge

# A PKCS#10 request with an RSA-4096 key and a few SANs is under 3 KiB of base64.
MAX_REQUEST = 32 * 1024

# §4.1.3, §4.2.3: certs-only CMS, base64 (Content-Transfer-Encoding: base64).
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS = "application/csrattrs"
PKCS10 = "application/pkcs10"

_WHITESPACE = re.compile(rb"\s+")
_PEM_ARMOUR = re.compile(rb"-----(BEGIN|END) (NEW )?CERTIFICATE REQUEST-----")


def _b64(der: bytes) -> bytes:
    """Base64 on one line. RFC 2045 asks for lines of at most 76 characters, but strongSwan's pki 5.9
    decodes the body in one piece and misreads any line break (measured: "length of ASN.1 object
    invalid"); every client met decodes one line (OpenSSL, curl | base64 -d, libest, Python)."""
    return base64.b64encode(der) + b"\n"


def parse_request(body: bytes) -> bytes:
    """The DER of the PKCS#10 request in an EST body: base64 with any line breaks and spaces (clients
    wrap at 64 or 76 characters, with LF or CRLF); PEM armour is tolerated. Raises InvalidInput (400)
    naming the body when it is not one, PayloadTooLarge (413) over MAX_REQUEST. The request's own
    signature (proof of possession) is the use case's to check, as for every other CSR."""
    if len(body) > MAX_REQUEST:
        raise PayloadTooLarge(f"the body is larger than {MAX_REQUEST} bytes", field="body")
    text = _WHITESPACE.sub(b"", _PEM_ARMOUR.sub(b"", body))
    if not text:
        raise InvalidInput("a base64 PKCS#10 certificate request is required", field="body")
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the body is not base64", field="body") from None
    try:
        x509.load_der_x509_csr(der)
    except ValueError:
        raise InvalidInput("the body is not a DER PKCS#10 certificate request in base64", field="body") from None
    return der


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A degenerate (certs-only) PKCS#7 SignedData holding ``certificates``, DER, in base64."""
    return _b64(pkcs7.serialize_certificates(list(certificates), Encoding.DER))


# -- CsrAttrs (§4.5.2) ------------------------------------------------------------------------------
#   CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
#   AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
#   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF AttributeValue }
# Only OIDs and attributes whose values are OIDs are written: all the profiles have to say.


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def oid_der(dotted: str) -> bytes:
    """DER of an OBJECT IDENTIFIER given in dotted form."""
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or any(a < 0 for a in arcs):
        raise ValueError(f"not an object identifier: {dotted}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def csr_attrs(oids: Sequence[str] = (), attributes: Sequence[tuple[str, Sequence[str]]] = ()) -> bytes:
    """Base64 DER of CsrAttrs: each of ``oids`` alone, then each (type, [value OIDs]) attribute.
    Empty input gives the empty SEQUENCE (§4.5.2 allows a 204 instead; strongSwan takes either)."""
    items = [oid_der(o) for o in oids]
    for kind, values in attributes:
        items.append(_tlv(0x30, oid_der(kind) + _tlv(0x31, b"".join(sorted(oid_der(v) for v in values)))))
    return _b64(_tlv(0x30, b"".join(items)))
