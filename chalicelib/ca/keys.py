"""CA private keys: generation, import of existing keys (migration) and serialisation.

A tenant's first key is P-256: SeaCat clients verify ECDSA P-256 only, and the client
identity algorithm is defined over the 65-byte uncompressed P-256 point. A key made or
imported by a CA rotation may also be P-384 (``ROTATION_CURVES``), for tenants whose
relying parties ask for it; client keys stay P-256 whatever the CA's curve.

Error messages never echo any part of the submitted key; they only name the kind
of problem (and at most the algorithm or curve name), because they go back to the
client and into logs.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chalicelib.errors import InvalidInput

_FIELD = "privateKey"

# A P-256 key in any PEM form is well under 1 KiB; the cap stops us regex-scanning
# megabytes of junk before refusing it.
MAX_PEM_LENGTH = 16 * 1024

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----",
    re.DOTALL,
)

# PEM labels we know how to turn into a private key.
_KEY_LABELS = frozenset({"EC PRIVATE KEY", "PRIVATE KEY"})

# Labels that are recognisably something else, with the reason we refuse them.
_REFUSED_LABELS = {
    "ENCRYPTED PRIVATE KEY": "the private key is encrypted; import an unencrypted key",
    "RSA PRIVATE KEY": "the private key is RSA; an EC P-256 key is required",
    "DSA PRIVATE KEY": "the private key is DSA; an EC P-256 key is required",
    "OPENSSH PRIVATE KEY": "OpenSSH key format is not supported; use PKCS#8 or SEC1 PEM",
    "PUBLIC KEY": "this is a public key; the private key is required",
    "EC PUBLIC KEY": "this is a public key; the private key is required",
    "RSA PUBLIC KEY": "this is a public key; the private key is required",
    "CERTIFICATE": "this is a certificate; the private key is required",
    "CERTIFICATE REQUEST": "this is a certificate request; the private key is required",
}


# The curves a CA key may be on, by the names the API uses.
CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
ROTATION_CURVES = tuple(CURVES)
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384"}


def curve_name(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """P-256 or P-384 (the API's names); the OpenSSL name for any other curve."""
    return _CURVE_NAMES.get(key.curve.name, key.curve.name)


def generate_ca_key(curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    """A fresh key for a tenant CA: P-256 unless ``curve`` names another of CURVES."""
    return ec.generate_private_key(CURVES[curve]())


def signature_hash(key: ec.EllipticCurvePrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """The digest a CA key signs with: SHA-256 for P-256, SHA-384 for P-384 (RFC 5480 §4)."""
    return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()


def load_ca_private_key_pem(pem: str | bytes, curves: tuple[str, ...] = ("P-256",)) -> ec.EllipticCurvePrivateKey:
    """Import an existing unencrypted CA key (SEC1 or PKCS#8 PEM) on one of ``curves`` (P-256 by default).

    An ``EC PARAMETERS`` block (written by ``openssl ecparam -genkey`` without
    ``-noout``) is skipped: the key block carries its curve anyway.
    """
    if isinstance(pem, bytes):
        try:
            text = pem.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidInput("privateKey is not PEM text", field=_FIELD) from None
    elif isinstance(pem, str):
        text = pem
    else:
        raise InvalidInput("privateKey must be a PEM string", field=_FIELD)

    if len(text) > MAX_PEM_LENGTH:
        raise InvalidInput("privateKey is too large for a P-256 key", field=_FIELD)

    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise InvalidInput("privateKey is not a PEM-encoded key", field=_FIELD)

    key_blocks: list[tuple[str, str]] = []
    for label, block in blocks:
        if label == "EC PARAMETERS":
            continue
        if label in _KEY_LABELS:
            key_blocks.append((label, block))
            continue
        reason = _REFUSED_LABELS.get(label, f"unsupported PEM block type {label!r}")
        raise InvalidInput(reason, field=_FIELD)

    if not key_blocks:
        raise InvalidInput("privateKey contains no private key block", field=_FIELD)
    if len(key_blocks) > 1:
        raise InvalidInput("privateKey contains more than one private key", field=_FIELD)

    label, block = key_blocks[0]
    # Traditional OpenSSL encryption of a SEC1 key is signalled by PEM headers.
    if label == "EC PRIVATE KEY" and "Proc-Type:" in block and "ENCRYPTED" in block:
        raise InvalidInput("the private key is encrypted; import an unencrypted key", field=_FIELD)

    try:
        key = serialization.load_pem_private_key(block.encode("ascii"), password=None)
    except TypeError:
        # cryptography raises TypeError when a password would be needed.
        raise InvalidInput("the private key is encrypted; import an unencrypted key", field=_FIELD) from None
    except UnsupportedAlgorithm:
        raise InvalidInput(
            "the private key uses an unsupported algorithm; an EC P-256 key is required",
            field=_FIELD,
        ) from None
    except ValueError:
        # Deliberately generic: the parser's message may describe the key bytes.
        raise InvalidInput("privateKey could not be parsed as an EC private key", field=_FIELD) from None

    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = "RSA" if isinstance(key, rsa.RSAPrivateKey) else type(key).__name__
        raise InvalidInput(
            f"the private key is not an EC key ({kind}); an EC P-256 key is required",
            field=_FIELD,
        )
    if curve_name(key) not in curves:
        wanted = "P-256 (prime256v1)" if curves == ("P-256",) else " or ".join(curves)
        raise InvalidInput(f"the private key is on curve {key.curve.name}; {wanted} is required", field=_FIELD)
    return key


def private_key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the form stored in the secret store (which encrypts at rest)."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.

    SPKI (not the raw point) so the value matches ``openssl pkey -pubout -outform DER | sha256sum``.
    """
    spki = public_key.public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(spki).hexdigest()
