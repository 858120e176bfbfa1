"""CA key generation, import (migration) and serialisation."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from chalicelib.ca import keys
from chalicelib.errors import InvalidInput

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "seacat-cr-vectors.json").read_text())
CA_KEY_PEM: str = VECTORS["test_private_keys_pem"]["seacat-test-ca"]
OPENSSL = shutil.which("openssl") or "openssl"


def _pem(
    key: object, fmt: serialization.PrivateFormat, enc: serialization.KeySerializationEncryption | None = None
) -> bytes:
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey))
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc or serialization.NoEncryption())


def _refused(pem: object, reason_fragment: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        keys.load_ca_private_key_pem(pem)  # type: ignore[arg-type]
    assert info.value.field == "privateKey"
    assert reason_fragment in info.value.message
    # No key material in the message: no chunk of any base64 body line may appear.
    if isinstance(pem, (str, bytes)):
        text = pem.decode("latin-1") if isinstance(pem, bytes) else pem
        for line in text.splitlines():
            if not line.startswith("-----") and len(line) >= 16:
                assert line[:16] not in info.value.message
    return info.value


def test_generate_is_p256() -> None:
    key = keys.generate_ca_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert keys.generate_ca_key().private_numbers() != key.private_numbers()


def test_private_key_to_pem_is_unencrypted_pkcs8_and_round_trips() -> None:
    key = keys.generate_ca_key()
    pem = keys.private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert b"ENCRYPTED" not in pem
    again = keys.load_ca_private_key_pem(pem)
    assert again.private_numbers() == key.private_numbers()


def test_load_pkcs8_from_vectors_str_and_bytes() -> None:
    from_str = keys.load_ca_private_key_pem(CA_KEY_PEM)
    from_bytes = keys.load_ca_private_key_pem(CA_KEY_PEM.encode("ascii"))
    assert from_str.private_numbers() == from_bytes.private_numbers()
    assert isinstance(from_str.curve, ec.SECP256R1)


def test_load_sec1_traditional() -> None:
    key = keys.generate_ca_key()
    pem = _pem(key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert keys.load_ca_private_key_pem(pem.decode()).private_numbers() == key.private_numbers()


def test_load_openssl_ecparam_genkey_with_parameters_block(tmp_path: Path) -> None:
    out = tmp_path / "ca.key"
    subprocess.run(
        [OPENSSL, "ecparam", "-name", "prime256v1", "-genkey", "-out", str(out)],
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert "BEGIN EC PARAMETERS" in text and "BEGIN EC PRIVATE KEY" in text
    key = keys.load_ca_private_key_pem(text)
    assert isinstance(key.curve, ec.SECP256R1)
    # Same key openssl sees: compare public key fingerprints via openssl itself.
    spki = subprocess.run(
        [OPENSSL, "pkey", "-in", str(out), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    assert keys.public_key_fingerprint(key.public_key()) == hashlib.sha256(spki).hexdigest()


def test_load_openssl_ecparam_genkey_noout(tmp_path: Path) -> None:
    out = tmp_path / "ca.key"
    subprocess.run(
        [OPENSSL, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(out)],
        check=True,
        capture_output=True,
    )
    assert isinstance(keys.load_ca_private_key_pem(out.read_bytes()).curve, ec.SECP256R1)


def test_load_tolerates_surrounding_text_and_crlf() -> None:
    text = "my old CA key\r\n" + CA_KEY_PEM.replace("\n", "\r\n") + "\r\n"
    assert (
        keys.load_ca_private_key_pem(text).private_numbers()
        == keys.load_ca_private_key_pem(CA_KEY_PEM).private_numbers()
    )


def test_fingerprint_is_sha256_of_spki_lowercase_hex() -> None:
    key = keys.load_ca_private_key_pem(CA_KEY_PEM)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fp = keys.public_key_fingerprint(key.public_key())
    assert fp == hashlib.sha256(spki).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fp != keys.public_key_fingerprint(keys.generate_ca_key().public_key())


@pytest.mark.parametrize("value", [None, 42, 1.5, True, ["-----BEGIN PRIVATE KEY-----"], {"pem": CA_KEY_PEM}])
def test_refuses_non_string(value: object) -> None:
    _refused(value, "must be a PEM string")


@pytest.mark.parametrize("value", ["", "hello", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49", "-----BEGIN PRIVATE KEY-----"])
def test_refuses_non_pem(value: str) -> None:
    _refused(value, "not a PEM-encoded key")


def test_refuses_non_ascii_bytes() -> None:
    _refused(b"\xff\xfe" + CA_KEY_PEM.encode(), "not PEM text")


def test_refuses_too_large() -> None:
    _refused(CA_KEY_PEM + "x" * keys.MAX_PEM_LENGTH, "too large")


def test_refuses_encrypted_pkcs8() -> None:
    key = keys.generate_ca_key()
    pem = _pem(key, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"secret"))
    assert b"ENCRYPTED PRIVATE KEY" in pem
    _refused(pem, "encrypted")


def test_refuses_encrypted_sec1() -> None:
    key = keys.generate_ca_key()
    pem = _pem(key, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"secret"))
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    _refused(pem, "encrypted")


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_refuses_p384(fmt: serialization.PrivateFormat) -> None:
    pem = _pem(ec.generate_private_key(ec.SECP384R1()), fmt)
    err = _refused(pem, "P-256")
    assert "secp384r1" in err.message


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_refuses_rsa(fmt: serialization.PrivateFormat) -> None:
    pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024), fmt)
    err = _refused(pem, "RSA")
    assert "EC P-256" in err.message


def test_refuses_ed25519() -> None:
    _refused(_pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8), "not an EC key")


def test_refuses_garbage_inside_armour() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbCwganVzdCB0ZXh0\n-----END PRIVATE KEY-----\n"
    _refused(pem, "could not be parsed")


def test_refuses_truncated_key() -> None:
    lines = CA_KEY_PEM.splitlines()
    pem = "\n".join(lines[:2] + lines[-1:]) + "\n"
    _refused(pem, "could not be parsed")


def test_refuses_public_key_and_certificate() -> None:
    key = keys.generate_ca_key()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _refused(public_pem, "public key")
    cert_pem = VECTORS["certificate_vectors"][0]["pem"]
    _refused(cert_pem, "certificate")


def test_refuses_only_parameters_and_two_keys() -> None:
    params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    _refused(params, "no private key")
    _refused(CA_KEY_PEM + keys.private_key_to_pem(keys.generate_ca_key()).decode(), "more than one")


def test_refuses_unknown_block_type() -> None:
    _refused("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "OpenSSH")
    _refused("-----BEGIN FOO BAR-----\nAAAA\n-----END FOO BAR-----\n", "unsupported PEM block")


def test_errors_do_not_chain_parser_exceptions() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    err = _refused(pem, "could not be parsed")
    assert err.__cause__ is None and err.__suppress_context__


# -- keys made or imported by a CA rotation ---------------------------------------------------------


@pytest.mark.parametrize("curve, name, digest", [("P-256", "secp256r1", "sha256"), ("P-384", "secp384r1", "sha384")])
def test_rotation_curves_generate_load_and_sign_with_their_digest(curve: str, name: str, digest: str) -> None:
    key = keys.generate_ca_key(curve)
    assert key.curve.name == name and keys.curve_name(key) == curve and keys.curve_name(key.public_key()) == curve
    assert keys.signature_hash(key).name == digest
    loaded = keys.load_ca_private_key_pem(keys.private_key_to_pem(key), curves=keys.ROTATION_CURVES)
    assert loaded.private_numbers() == key.private_numbers()


def test_a_rotation_still_refuses_other_curves() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(InvalidInput, match=r"secp521r1; P-256 or P-384 is required") as raised:
        keys.load_ca_private_key_pem(pem, curves=keys.ROTATION_CURVES)
    assert raised.value.field == "privateKey"
    with pytest.raises(KeyError):
        keys.generate_ca_key("P-521")
