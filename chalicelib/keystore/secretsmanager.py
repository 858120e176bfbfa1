"""Tenant CA private keys in AWS Secrets Manager secrets encrypted with the project's KMS key.

The decrypted key is cached in the container, so issuing a certificate does not call Secrets
Manager; only the first signature per tenant and container does.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib import aws
from chalicelib.ca import keys
from chalicelib.errors import InvalidInput, SecretAlreadyExists, Unavailable
from chalicelib.settings import get_settings


_cache: dict[str, ec.EllipticCurvePrivateKey] = {}
_lock = threading.Lock()


def secret_name(tenant_id: str) -> str:
    return f"{get_settings().secret_prefix}{tenant_id}/ca-key"


def create(tenant_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    """Store a new tenant key; returns the secret name. Raises SecretAlreadyExists."""
    settings = get_settings()
    name = secret_name(tenant_id)
    sm = aws.client("secretsmanager")
    try:
        sm.create_secret(
            Name=name,
            KmsKeyId=settings.kms_key_id,
            SecretString=keys.private_key_to_pem(key).decode("ascii"),
            Description=f"SeaCat PKI CA private key of tenant {tenant_id}",
            Tags=[{"Key": "seacat:tenant", "Value": tenant_id}, {"Key": "seacat:stage", "Value": settings.stage}],
        )
    except sm.exceptions.ResourceExistsException as exc:
        raise SecretAlreadyExists(name) from exc
    except Exception as exc:  # botocore ClientError, endpoint errors: fail closed, retryable
        raise Unavailable("the key store is not available") from _scrub(exc)
    with _lock:
        _cache[name] = key
    return name


def load(name: str) -> ec.EllipticCurvePrivateKey:
    with _lock:
        cached = _cache.get(name)
    if cached is not None:
        return cached
    sm = aws.client("secretsmanager")
    try:
        value = sm.get_secret_value(SecretId=name)["SecretString"]
    except Exception as exc:
        raise Unavailable("the key store is not available") from _scrub(exc)
    try:
        key = keys.load_ca_private_key_pem(value)
    except InvalidInput:
        # The stored key is damaged: a server fault, never the caller's bad input.
        raise RuntimeError(f"the CA key in secret {name} cannot be read") from None
    with _lock:
        _cache[name] = key
    return key


def forget() -> None:
    with _lock:
        _cache.clear()


def _scrub(exc: Exception) -> Exception:
    # Secrets Manager errors can echo request parameters; keep only the error's class and code.
    # Timeouts and connection errors carry no response at all.
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return RuntimeError(f"{type(exc).__name__} {code}".strip())
