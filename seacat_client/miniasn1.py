"""A tiny DER writer mirroring the SeaCat G3 clients' "MiniASN1".

Deliberately independent of the server's decoder (no ``chalicelib``, no
``cryptography.hazmat.asn1``): a client/server pair sharing one codec would hide a shared bug.

The G3 trick (protocol notes §3.2): :func:`sequence` builds a SEQUENCE from already-encoded
children and retags each child *in place* by overwriting its identifier octet with a context
tag, ``[n]`` for the n-th child. Constructed children (universal SEQUENCE/SET, or a child
that already starts with ``A0``) get ``A0+n``; any other child gets ``80+n``.
:func:`sequence_of` keeps the children's tags. Lengths are minimal DER (short form below
128, else ``81 xx`` / ``82 xx xx`` / ...). Only low tag numbers (< 31) are supported.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "bit_string",
    "encode_length",
    "ia5_string",
    "integer",
    "object_identifier",
    "octet_string",
    "sequence",
    "sequence_of",
    "tlv",
    "utc_time",
    "utf8_string",
]

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_UTF8_STRING = 0x0C
TAG_IA5_STRING = 0x16
TAG_UTC_TIME = 0x17
TAG_SEQUENCE = 0x30
TAG_SET = 0x31


def encode_length(length: int) -> bytes:
    """Minimal definite DER length octets."""
    if length < 0:
        raise ValueError("negative length")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > 0x7E:
        raise ValueError("length too large")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise ValueError("only single-octet (low tag number) identifiers are supported")
    return bytes([tag]) + encode_length(len(content)) + bytes(content)


def _is_constructed_child(identifier: int) -> bool:
    # Same test as the G3 clients: universal SEQUENCE (0x10) / SET (0x11) number, or A0.
    return identifier & 0x1F in (0x10, 0x11) or identifier == 0xA0


def sequence(children: Iterable[bytes | None], *, implicit_tagging: bool = True, tag: int = TAG_SEQUENCE) -> bytes:
    """SEQUENCE of encoded children, retagging child n to [n] (``A0+n`` or ``80+n``).

    A ``None`` child is skipped but still consumes its number (an absent OPTIONAL).
    """
    body = bytearray()
    for number, child in enumerate(children):
        if child is None:
            continue
        if not child:
            raise ValueError("empty child encoding")
        if implicit_tagging:
            if number > 30:
                raise ValueError("context tag numbers above 30 are not supported")
            base = 0xA0 if _is_constructed_child(child[0]) else 0x80
            identifier = base + number
        else:
            identifier = child[0]
        body.append(identifier)
        body += child[1:]
    return tlv(tag, bytes(body))


def sequence_of(children: Iterable[bytes]) -> bytes:
    """SEQUENCE OF: children keep their own tags."""
    return sequence(children, implicit_tagging=False)


def integer(value: int) -> bytes:
    """Two's-complement minimal INTEGER."""
    length = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(TAG_INTEGER, value.to_bytes(length, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(TAG_OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    """BIT STRING of whole octets (unused-bits octet 0)."""
    return tlv(TAG_BIT_STRING, b"\x00" + bytes(value))


def utf8_string(value: str) -> bytes:
    return tlv(TAG_UTF8_STRING, value.encode("utf-8"))


def ia5_string(value: str) -> bytes:
    """IA5String; non-ASCII characters become ``?`` (as the Android client's US-ASCII encoding)."""
    return tlv(TAG_IA5_STRING, value.encode("ascii", "replace"))


def utc_time(text: str) -> bytes:
    """UTCTime from already formatted text (the clients write ``YYMMDDhhmmssZ``)."""
    return tlv(TAG_UTC_TIME, text.encode("ascii", "replace"))


def object_identifier(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or min(arcs) < 0:
        raise ValueError(f"invalid OID {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(TAG_OID, bytes(body))
