"""PEM armour for DER blobs (certificates, CRLs), without parsing them."""

from __future__ import annotations

import base64
import textwrap


def der_to_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode("ascii")
