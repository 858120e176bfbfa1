"""Key store adapters (Secrets Manager, the local envelope store); the port is in chalicelib/service/ports.py."""

from __future__ import annotations

import re

# The tenant secret kinds put_secret may write (and replace): the approve webhook's signing key, and one
# delegated OCSP responder key and certificate per CA certificate (ocsp-signer-<first 16 hex of its id>).
# Never "ca-key": a CA key is not replaced.
WEBHOOK_SECRET = "webhook-secret"
OCSP_SIGNER_RE = re.compile(r"ocsp-signer-[0-9a-f]{16}")


def replaceable_kind(kind: str) -> bool:
    return kind == WEBHOOK_SECRET or OCSP_SIGNER_RE.fullmatch(kind) is not None
