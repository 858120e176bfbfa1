"""Build a SeaCat G3 certificate request (CR) the way the G3 clients do.

Layout (protocol notes §3.1/§3.2), produced with the MiniASN1-style writer::

    tbs = SEQUENCE[ INTEGER 6402, UTF8String app, UTCTime createdAt, UTCTime validTo,
                    SEQUENCE[ SEQUENCE[ OID ecPublicKey, OID prime256v1 ], BIT STRING point ],
                    SEQUENCE OF [ SEQUENCE[ IA5String key, IA5String value ] ... ] ]
    tbs[0] = A0                      # then signed, byte for byte
    cr  = SEQUENCE[ tbs, SEQUENCE[ OID ecdsa-with-SHA256 ], OCTET STRING DER-signature ]
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import miniasn1 as der

__all__ = [
    "CR_VERSION",
    "OID_ECDSA_WITH_SHA256",
    "OID_EC_PUBLIC_KEY",
    "OID_PRIME256V1",
    "VALIDITY",
    "build_cr",
    "build_tbs",
    "default_attributes",
    "format_cr_time",
]

CR_VERSION = 0x1902
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_PRIME256V1 = "1.2.840.10045.3.1.7"
OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
VALIDITY = datetime.timedelta(minutes=5)  # validTo = createdAt + 5 min, as all clients do


def default_attributes() -> list[tuple[str, str]]:
    """What the Python G3 client sends: ``OS=<platform.system()>``, ``Client=python``."""
    return [("OS", platform.system()), ("Client", "python")]


def format_cr_time(moment: datetime.datetime) -> str:
    """``YYMMDDhhmmssZ`` from the wall-clock fields of ``moment`` (no zone conversion).

    The clients label whatever clock they read with "Z"; the server treats the value as opaque.
    """
    return moment.strftime("%y%m%d%H%M%S") + "Z"


def _uncompressed_point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    # Like the Android and Python clients: the last 65 bytes of the SubjectPublicKeyInfo.
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki[-65:]


def build_tbs(
    public_key: ec.EllipticCurvePublicKey,
    *,
    application: str,
    attributes: Sequence[tuple[str, str]] | None = None,
    created_at: datetime.datetime | None = None,
) -> bytes:
    """The to-be-signed request exactly as the clients sign it (first octet already ``A0``).

    Arguments as for :func:`build_cr`.
    """
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise ValueError("SeaCat CRs need a P-256 key")
    if attributes is None:
        attributes = default_attributes()
    if created_at is None:
        created_at = datetime.datetime.now(datetime.UTC)
    valid_to = created_at + VALIDITY

    tbs = bytearray(
        der.sequence(
            [
                der.integer(CR_VERSION),
                der.utf8_string(application),
                der.utc_time(format_cr_time(created_at)),
                der.utc_time(format_cr_time(valid_to)),
                der.sequence(
                    [
                        der.sequence(
                            [
                                der.object_identifier(OID_EC_PUBLIC_KEY),
                                der.object_identifier(OID_PRIME256V1),
                            ]
                        ),
                        der.bit_string(_uncompressed_point(public_key)),
                    ]
                ),
                der.sequence_of(
                    der.sequence([der.ia5_string(key), der.ia5_string(value)]) for key, value in attributes
                ),
            ]
        )
    )
    tbs[0] = 0xA0  # the clients sign the TBS already carrying its final [0] tag
    return bytes(tbs)


def build_cr(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    application: str,
    attributes: Sequence[tuple[str, str]] | None = None,
    created_at: datetime.datetime | None = None,
    deterministic: bool = False,
) -> bytes:
    """DER of a signed SeaCat CR.

    ``attributes`` is the complete list sent in ``[5]`` (order kept; ``None`` means
    :func:`default_attributes`, ``[]`` sends an empty ``A5 00``; non-ASCII becomes ``?``).
    ``created_at`` defaults to the current UTC time (its wall clock is written with a "Z").
    ``deterministic`` signs with RFC 6979 nonces, so equal inputs give equal bytes.
    """
    tbs = build_tbs(
        private_key.public_key(),
        application=application,
        attributes=attributes,
        created_at=created_at,
    )
    algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)
    signature = private_key.sign(tbs, algorithm)
    return der.sequence(
        [
            tbs,  # keeps A0: a child starting with A0 is retagged A0+0
            der.sequence([der.object_identifier(OID_ECDSA_WITH_SHA256)]),
            der.octet_string(signature),
        ]
    )
