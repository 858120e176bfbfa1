"""chalicelib.seacat.codec: decoding and verifying SeaCat G3 certificate requests.

Negative cases are built by a tiny DER helper local to this file (not the server decoder,
not seacat_client), signed with the vectors' TEST-ONLY keys, so each one is valid except
for the single defect under test and the asserted reason shows which check fired.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import PublicKeyAlgorithmOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidInput, PayloadTooLarge
from chalicelib.seacat.codec import (
    IDENTITY_RE,
    MAX_CR_SIZE,
    SeaCatRequest,
    decode_cr,
    identity_from_point,
    identity_of_public_key,
)

VECTORS_PATH = Path(__file__).resolve().parent.parent / "vectors" / "seacat-cr-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
CR_VECTORS: list[dict[str, Any]] = VECTORS["cr_vectors"]
BY_NAME = {v["name"]: v for v in CR_VECTORS}
VECTOR_DERS = [bytes.fromhex(v["der_hex"]) for v in CR_VECTORS]
SAMPLE = bytes.fromhex(BY_NAME["sample_cr"]["der_hex"])
ANDROID = BY_NAME["android_with_attributes"]


def _test_key(label: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(VECTORS["test_private_keys_pem"][label].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


ANDROID_KEY = _test_key("seacat-test-android")

# --- an independent, test-local DER builder ---

OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
OID_PRIME256V1 = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7
OID_PRIME192V1 = bytes.fromhex("2a8648ce3d030101")  # 1.2.840.10045.3.1.1 (same length)
OID_SECP384R1 = bytes.fromhex("2b81040022")  # 1.3.132.0.34
OID_ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")  # 1.2.840.10045.4.3.2
OID_ECDSA_SHA384 = bytes.fromhex("2a8648ce3d040303")  # 1.2.840.10045.4.3.3
ANDROID_POINT = bytes.fromhex(ANDROID["expected"]["public_key_point_hex"])


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def make_tbs(
    *,
    version: bytes = b"\x19\x02",
    application: bytes | None = b"com.teskalabs.seacat.demo",
    created: bytes | None = b"200304140909Z",
    valid_to: bytes | None = b"200304141409Z",
    key_algorithm: bytes = OID_EC_PUBLIC_KEY,
    curve: bytes | None = OID_PRIME256V1,
    bit_string: bytes = b"\x00" + ANDROID_POINT,
    attributes: list[tuple[bytes, bytes]] | None = None,
    with_attributes: bool = True,
    extra: bytes = b"",
) -> bytes:
    if attributes is None:
        attributes = [(b"OS", b"android")]
    algorithm = tlv(0x80, key_algorithm) + (tlv(0x81, curve) if curve is not None else b"")
    body = (
        tlv(0x80, version)
        + (tlv(0x81, application) if application is not None else b"")
        + (tlv(0x82, created) if created is not None else b"")
        + (tlv(0x83, valid_to) if valid_to is not None else b"")
        + tlv(0xA4, tlv(0xA0, algorithm) + tlv(0x81, bit_string))
    )
    if with_attributes:
        body += tlv(0xA5, b"".join(tlv(0x30, tlv(0x80, k) + tlv(0x81, v)) for k, v in attributes))
    return tlv(0xA0, body + extra)


def make_cr(
    *,
    key: ec.EllipticCurvePrivateKey = ANDROID_KEY,
    sig_algorithm: bytes = OID_ECDSA_SHA256,
    sig_parameters: bytes | None = None,
    signature: bytes | None = None,
    **tbs_fields: Any,
) -> bytes:
    tbs = make_tbs(**tbs_fields)
    if signature is None:
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    sig_alg = tlv(0x80, sig_algorithm) + (tlv(0x81, sig_parameters) if sig_parameters else b"")
    return tlv(0x30, tbs + tlv(0xA1, sig_alg) + tlv(0x82, signature))


def reason_of(der: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_cr(der)
    assert caught.value.field == "cr"
    return caught.value.message


# --- positive vectors ---


@pytest.mark.parametrize("vector", CR_VECTORS, ids=lambda v: v["name"])
def test_vector_decodes_to_expected_fields(vector: dict[str, Any]) -> None:
    der = bytes.fromhex(vector["der_hex"])
    assert der == base64.b64decode(vector["base64"]) and len(der) == vector["der_length"]
    expected = vector["expected"]

    request = decode_cr(der)

    assert request.der == der
    assert request.version == expected["version"] == 6402
    assert request.application == expected["application"]
    assert request.created_at_raw == expected["created_at_raw"]
    assert request.valid_to_raw == expected["valid_to_raw"]
    assert expected["key_algorithm"] == PublicKeyAlgorithmOID.EC_PUBLIC_KEY.dotted_string
    assert expected["curve"] == ec.EllipticCurveOID.SECP256R1.dotted_string
    assert isinstance(request.public_key.curve, ec.SECP256R1)
    assert request.point.hex() == expected["public_key_point_hex"]
    assert (
        request.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        == request.point
    )
    assert request.attributes == tuple(tuple(pair) for pair in expected["attributes"])
    assert request.signature.hex() == expected["signature_hex"]
    assert expected["signature_algorithm"] == "1.2.840.10045.4.3.2"
    assert request.identity == expected["identity"]
    assert expected["signature_valid"] is True
    assert request.cr_id == hashlib.sha384(der).hexdigest()
    assert len(request.cr_id) == 96 and request.cr_id == request.cr_id.lower()


@pytest.mark.parametrize("vector", CR_VECTORS, ids=lambda v: v["name"])
def test_signed_slice_is_the_received_tbs_tlv(vector: dict[str, Any]) -> None:
    der = bytes.fromhex(vector["der_hex"])
    request = decode_cr(der)
    offset, length = vector["signed_bytes_offset"], vector["signed_bytes_length"]
    assert request.tbs.hex() == vector["signed_bytes_hex"]
    assert request.tbs == der[offset : offset + length]
    assert request.tbs[0] == 0xA0
    # and it really is what the signature covers
    request.public_key.verify(request.signature, request.tbs, ec.ECDSA(hashes.SHA256()))


def test_request_is_frozen_and_accepts_bytes_like() -> None:
    request = decode_cr(SAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.application = "x"  # type: ignore[misc]
    assert decode_cr(bytearray(SAMPLE)) == request
    assert decode_cr(memoryview(SAMPLE)) == request
    assert isinstance(request, SeaCatRequest)


def test_local_builder_reproduces_android_vector() -> None:
    """Sanity check of the test helper: with the vector's inputs it yields the vector bytes."""
    rebuilt = make_cr(attributes=[(bytes(k, "ascii"), bytes(v, "ascii")) for k, v in ANDROID["expected"]["attributes"]])
    assert rebuilt.hex() == ANDROID["der_hex"]


# --- identity ---


@pytest.mark.parametrize("vector", VECTORS["identity_vectors"], ids=lambda v: v["key"])
def test_identity_vectors(vector: dict[str, Any]) -> None:
    point = bytes.fromhex(vector["point_hex"])
    assert hashlib.sha384(point).hexdigest() == vector["sha384_hex"]
    assert base64.b32encode(hashlib.sha384(point).digest()).decode() == vector["base32_full"]
    identity = identity_from_point(point)
    assert identity == vector["identity"]
    assert IDENTITY_RE.match(identity)
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    assert identity_of_public_key(public_key) == identity


def test_identity_of_test_keys() -> None:
    for vector in CR_VECTORS[1:]:
        key = _test_key(vector["test_private_key_label"])
        assert identity_of_public_key(key.public_key()) == vector["expected"]["identity"]


def test_identity_rejects_spki_and_other_curves() -> None:
    spki = ANDROID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError):
        identity_from_point(spki)  # the documented pitfall: hashing the SPKI
    with pytest.raises(ValueError):
        identity_of_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_identity_regex() -> None:
    assert IDENTITY_RE.match("HDKXPDREZADFK4G2")
    for bad in ("HDKXPDREZADFK4G", "HDKXPDREZADFK4G21", "hdkxpdrezadfk4g2", "HDKXPDREZADFK4G1", "HDKXPDREZADFK4G2\n"):
        assert not IDENTITY_RE.match(bad), bad
        assert not IDENTITY_RE.fullmatch(bad), bad


# --- negatives derived from the vectors ---


def _flip(der: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(der)
    out[index] ^= mask
    return bytes(out)


@pytest.mark.parametrize("der", VECTOR_DERS, ids=[v["name"] for v in CR_VECTORS])
def test_flipped_signature_bit(der: bytes) -> None:
    assert reason_of(_flip(der, len(der) - 1)) == "signature does not verify"
    assert reason_of(_flip(der, len(der) - 40, 0x80)) == "signature does not verify"


@pytest.mark.parametrize("der", VECTOR_DERS, ids=[v["name"] for v in CR_VECTORS])
def test_changed_application_byte(der: bytes) -> None:
    request = decode_cr(der)
    index = der.index(request.application.encode())
    assert reason_of(_flip(der, index)) == "signature does not verify"


@pytest.mark.parametrize("der", VECTOR_DERS, ids=[v["name"] for v in CR_VECTORS])
def test_retagged_tbs(der: bytes) -> None:
    offset = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)  # after the outer header
    assert der[offset] == 0xA0
    retagged = der[:offset] + b"\x30" + der[offset + 1 :]
    assert reason_of(retagged) == "tbsRequest must be a constructed [0] element (A0)"


def test_every_truncation_is_rejected() -> None:
    for der in VECTOR_DERS:
        for cut in range(1, len(der)):
            assert reason_of(der[:cut]) == "truncated or malformed DER"


@pytest.mark.parametrize("der", VECTOR_DERS, ids=[v["name"] for v in CR_VECTORS])
def test_appended_byte(der: bytes) -> None:
    assert reason_of(der + b"\x00") == "trailing bytes after the certificate request"
    assert reason_of(der + der) == "trailing bytes after the certificate request"


def test_empty_body() -> None:
    assert reason_of(b"") == "empty certificate request"


def test_not_bytes() -> None:
    assert reason_of(SAMPLE.hex()) == "request body must be bytes"
    assert reason_of(None) == "request body must be bytes"


def test_oversize_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        decode_cr(b"\x30" + b"\x00" * MAX_CR_SIZE)
    assert caught.value.field == "cr" and caught.value.status == 413
    # exactly MAX_CR_SIZE is not "too large" (it is rejected for its content instead)
    with pytest.raises(InvalidInput) as caught_max:
        decode_cr(b"\x30" + b"\x00" * (MAX_CR_SIZE - 1))
    assert not isinstance(caught_max.value, PayloadTooLarge)


def test_valid_cr_of_exactly_max_size_is_accepted() -> None:
    # attribute values are at most 1024 bytes: fill with full ones, then pad the last
    full = [(b"f%02d" % i, b"v" * 1024) for i in range(15)]
    base = len(make_cr(attributes=[*full, (b"k", b"")]))
    # the signature length varies (70-72 bytes), so search a few paddings for an exact hit
    for key in (b"k", b"kk", b"kkk", b"kkkk"):
        for padding in range(max(0, MAX_CR_SIZE - base - 64), MAX_CR_SIZE - base + 8):
            der = make_cr(attributes=[*full, (key, b"v" * padding)])
            if len(der) == MAX_CR_SIZE:
                assert decode_cr(der).attributes[-1] == (key.decode(), "v" * padding)
                return
    pytest.fail("could not hit MAX_CR_SIZE exactly")


def test_helper_builds_a_valid_cr() -> None:
    request = decode_cr(make_cr())
    assert request.attributes == (("OS", "android"),)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"version": b"\x19\x03"}, "unsupported version (expected 6402)"),
        ({"version": b"\x00"}, "unsupported version (expected 6402)"),
        ({"version": b"\xe6\xfe"}, "unsupported version (expected 6402)"),  # -6402
        ({"version": b"\x01" + b"\x00" * 40}, "unsupported version (expected 6402)"),
        ({"curve": OID_PRIME192V1}, "unsupported curve (expected prime256v1)"),
        ({"curve": OID_SECP384R1}, "unsupported curve (expected prime256v1)"),
        ({"curve": None}, "unsupported curve (expected prime256v1)"),
        (
            {"key_algorithm": bytes.fromhex("2a864886f70d010101")},
            "unsupported public key algorithm (expected ecPublicKey)",
        ),
        (
            {"bit_string": b"\x00" + ANDROID_POINT[:-1] + bytes([ANDROID_POINT[-1] ^ 0x02])},
            "public key point is not on the P-256 curve",
        ),
        ({"bit_string": b"\x00\x04" + b"\x00" * 64}, "public key point is not on the P-256 curve"),
        (
            {"bit_string": b"\x00" + bytes([2 + (ANDROID_POINT[-1] & 1)]) + ANDROID_POINT[1:33]},
            "public key must be an uncompressed P-256 point (65 bytes, 04...)",
        ),
        (
            {"bit_string": b"\x00" + b"\x06" + ANDROID_POINT[1:]},
            "public key must be an uncompressed P-256 point (65 bytes, 04...)",
        ),
        (
            {"bit_string": b"\x00" + ANDROID_POINT + b"\x00"},
            "public key must be an uncompressed P-256 point (65 bytes, 04...)",
        ),
        (
            {"bit_string": b"\x00" + ANDROID_POINT[:-1]},
            "public key must be an uncompressed P-256 point (65 bytes, 04...)",
        ),
        ({"bit_string": b"\x00"}, "public key must be an uncompressed P-256 point (65 bytes, 04...)"),
        # DER-valid BIT STRING with 2 unused (zero) bits: hazmat.asn1 accepts it, codec must not
        (
            {"bit_string": b"\x02" + ANDROID_POINT[:-1] + bytes([ANDROID_POINT[-1] & 0xFC])},
            "public key BIT STRING must have 0 unused bits",
        ),
        ({"sig_algorithm": OID_ECDSA_SHA384}, "unsupported signature algorithm (expected ecdsa-with-SHA256)"),
        ({"sig_parameters": OID_PRIME256V1}, "signature algorithm must not have parameters"),
        ({"signature": b""}, "signature does not verify"),
        ({"signature": b"\x30\x00"}, "signature does not verify"),
        ({"signature": b"\xff" * 72}, "signature does not verify"),
        ({"extra": tlv(0x86, b"x")}, "truncated or malformed DER"),
        ({"application": None}, "truncated or malformed DER"),
        ({"version": b""}, "truncated or malformed DER"),
        ({"bit_string": b""}, "truncated or malformed DER"),
        # 1 unused bit that is not zero: not DER
        ({"bit_string": b"\x01" + ANDROID_POINT[:-1] + bytes([ANDROID_POINT[-1] | 1])}, "truncated or malformed DER"),
        ({"key_algorithm": bytes.fromhex("2a80868648ce3d0201")}, "truncated or malformed DER"),  # non-minimal OID arc
        ({"key_algorithm": b""}, "truncated or malformed DER"),
    ],
    ids=lambda value: repr(value)[:50],
)
def test_semantic_rejections(fields: dict[str, Any], reason: str) -> None:
    assert reason_of(make_cr(**fields)) == reason


def test_tbs_without_attributes_is_accepted() -> None:
    request = decode_cr(make_cr(with_attributes=False))
    assert request.attributes == ()


def test_empty_attributes_are_accepted() -> None:
    assert make_tbs(attributes=[]).endswith(b"\xa5\x00")
    assert decode_cr(make_cr(attributes=[])).attributes == ()
    assert decode_cr(SAMPLE).attributes == ()


def test_attributes_keep_order_and_duplicates_and_replace_non_ascii() -> None:
    attributes = [(b"OS", b"android"), (b"OS", b"Linux"), (b"k\xc3\xa9y", b"v\xff"), (b"", b"")]
    request = decode_cr(make_cr(attributes=attributes))
    assert request.attributes == (("OS", "android"), ("OS", "Linux"), ("k??y", "v?"), ("", ""))


def test_application_is_utf8_with_replacement() -> None:
    assert decode_cr(make_cr(application="Žluťoučký kůň".encode())).application == "Žluťoučký kůň"
    assert decode_cr(make_cr(application=b"app\xff")).application == "app\ufffd"


def test_application_loses_controls_and_reordering_characters() -> None:
    """What an administrator reads: no control, bidi override/isolate, zero-width or line separator."""
    hostile = "com.bank\n\u202egnp.exe\u2066x\u2069\u200b\u2028end\x9b"
    assert decode_cr(make_cr(application=hostile.encode())).application == "com.bank??gnp.exe?x???end?"


@pytest.mark.parametrize(
    ("created", "valid_to", "raw"),
    [
        (None, None, ("", "")),  # missing
        (b"", b"", ("", "")),
        (b"13.12.19 2:31 PM", b"\xd9\xa1\xd9\xa9Z", ("13.12.19 2:31 PM", "????Z")),  # garbage
        (b"991231235959Z", b"000101000000Z", ("991231235959Z", "000101000000Z")),  # skewed
        (b"20200304140909Z", b"x", ("20200304140909Z", "x")),
    ],
)
def test_times_are_opaque_and_never_rejected(
    created: bytes | None, valid_to: bytes | None, raw: tuple[str, str]
) -> None:
    request = decode_cr(make_cr(created=created, valid_to=valid_to))
    assert (request.created_at_raw, request.valid_to_raw) == raw


def test_long_form_lengths_are_supported() -> None:
    der = make_cr(application=b"a" * 255, attributes=[(b"k" * 64, b"v" * 1024)] * 7)
    assert der[:2] == b"\x30\x82"
    request = decode_cr(der)
    assert request.application == "a" * 255
    assert request.tbs[:2] == b"\xa0\x82"


# --- strict DER (what hazmat.asn1 must reject, or the codec checks itself) ---


def test_non_minimal_and_indefinite_lengths() -> None:
    assert SAMPLE[:3] == bytes.fromhex("3081f2")
    # outer 30 81 f2 -> 30 82 00 f2
    assert reason_of(b"\x30\x82\x00\xf2" + SAMPLE[3:]) == "non-minimal DER length"
    # a length below 128 in long form
    assert reason_of(b"\x30\x81\x03\xa0\x01\x00") == "non-minimal DER length"
    # TBS a0 81 9a -> a0 82 00 9a (outer grows by one)
    assert reason_of(b"\x30\x81\xf3\xa0\x82\x00\x9a" + SAMPLE[6:]) == "non-minimal DER length"
    # an inner element: application 81 19 -> 81 81 19 (re-signed so only the encoding is wrong)
    tbs = SAMPLE[3:160]
    index = tbs.index(b"\x81\x19")
    body = tbs[3:index] + b"\x81\x81\x19" + tbs[index + 2 :]
    bad_tbs = tlv(0xA0, body)
    sig = ANDROID_KEY.sign(bad_tbs, ec.ECDSA(hashes.SHA256()))
    der = tlv(0x30, bad_tbs + tlv(0xA1, tlv(0x80, OID_ECDSA_SHA256)) + tlv(0x82, sig))
    assert reason_of(der) == "truncated or malformed DER"
    # indefinite length
    assert reason_of(b"\x30\x80" + SAMPLE[3:] + b"\x00\x00") == "indefinite length is not DER"


def test_non_minimal_integer_version_is_malformed() -> None:
    assert reason_of(make_cr(version=b"\x00\x19\x02")) == "truncated or malformed DER"


def test_wrong_outer_and_child_tags() -> None:
    assert reason_of(b"\x31" + SAMPLE[1:]) == "certificate request is not a DER SEQUENCE"
    assert reason_of(b"\x04" + SAMPLE[1:]) == "certificate request is not a DER SEQUENCE"
    assert reason_of(b"\x3f\x81\xf2" + SAMPLE[3:]) == "truncated or malformed DER"  # high-tag form
    # the signature as a BIT STRING-like [3] instead of [2]
    index = len(SAMPLE) - 73
    assert SAMPLE[index] == 0x82
    assert reason_of(SAMPLE[:index] + b"\x83" + SAMPLE[index + 1 :]) == "truncated or malformed DER"
    # constructed application [1] (A1) instead of primitive (81)
    app = SAMPLE.index(b"\x81\x19")
    assert reason_of(SAMPLE[:app] + b"\xa1" + SAMPLE[app + 1 :]) == "truncated or malformed DER"
    # attributes as SET (31) entries
    tbs = make_tbs(attributes=[(b"OS", b"x")]).replace(b"\x30\x07\x80\x02OS", b"\x31\x07\x80\x02OS")
    sig = ANDROID_KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = tlv(0x30, tbs + tlv(0xA1, tlv(0x80, OID_ECDSA_SHA256)) + tlv(0x82, sig))
    assert reason_of(der) == "truncated or malformed DER"


def test_missing_or_extra_outer_children() -> None:
    tbs = SAMPLE[3:160]
    sigalg = SAMPLE[160:172]
    signature = SAMPLE[172:]
    assert reason_of(tlv(0x30, tbs)) == "truncated or malformed DER"
    assert reason_of(tlv(0x30, tbs + sigalg)) == "truncated or malformed DER"
    assert reason_of(tlv(0x30, tbs + sigalg + signature + tlv(0x83, b""))) == "truncated or malformed DER"
    assert reason_of(tlv(0x30, b"")) == "truncated or malformed DER"
    assert decode_cr(tlv(0x30, tbs + sigalg + signature)).identity == "HDKXPDREZADFK4G2"


# --- robustness: nothing but InvalidInput/PayloadTooLarge escapes ---
# (Speed is measured by `make bench`, not asserted here: a loaded CI machine would make it flaky.)


def _decode_safely(data: bytes) -> None:
    try:
        decode_cr(data)
    except InvalidInput as error:  # PayloadTooLarge is a subclass
        assert error.field == "cr" and error.message
        assert type(error) in (InvalidInput, PayloadTooLarge)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_domain_errors(data: bytes) -> None:
    _decode_safely(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_sequence_bodies_only_raise_domain_errors(body: bytes) -> None:
    # wrap in a well-formed outer SEQUENCE (and sometimes a [0] TBS) to get past the header checks
    _decode_safely(tlv(0x30, body))
    _decode_safely(tlv(0x30, tlv(0xA0, body) + SAMPLE[160:]))


@st.composite
def mutated_vectors(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VECTOR_DERS)))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "replace"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif data:
            data[position] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_vectors())
def test_mutated_vectors_only_raise_domain_errors(data: bytes) -> None:
    _decode_safely(data)


def test_oversized_random_body_is_payload_too_large() -> None:
    for size in (MAX_CR_SIZE + 1, 10 * MAX_CR_SIZE):
        with pytest.raises(PayloadTooLarge):
            decode_cr(b"\x30\x84" + size.to_bytes(4, "big") + b"\x00" * (size - 6))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"application": b"a" * 256}, "application longer than 255 bytes"),
        ({"attributes": [(b"k%d" % i, b"v") for i in range(33)]}, "more than 32 attributes"),
        ({"attributes": [(b"k" * 65, b"v")]}, "an attribute longer than 64 (key) or 1024 (value) bytes"),
        ({"attributes": [(b"k", b"v" * 1025)]}, "an attribute longer than 64 (key) or 1024 (value) bytes"),
    ],
)
def test_decoded_fields_are_bounded(fields: dict[str, Any], reason: str) -> None:
    """A 16 KiB CR must not become a stored request (and audit event) many times its size."""
    with pytest.raises(InvalidInput) as caught:
        decode_cr(make_cr(**fields))
    assert (caught.value.field, caught.value.message) == ("cr", reason)


def test_device_strings_reach_logs_and_the_console_as_printable_text() -> None:
    request = decode_cr(
        make_cr(application="app\x1b[31m\u00e9\x00".encode() + b"\xff", attributes=[(b"k\x00", b"v\x1b\xc3\xa9")])
    )
    assert request.application == "app?[31m\u00e9?\ufffd"
    assert request.attributes == (("k?", "v???"),)
    assert decode_cr(make_cr(application=b"a" * 255)).application == "a" * 255
