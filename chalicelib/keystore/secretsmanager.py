"""Tenant CA private keys, and other per-tenant secrets (the approve webhook's signing key), in AWS
Secrets Manager secrets encrypted with the project's KMS key.

The decrypted CA key is cached in the container, so issuing a certificate does not call Secrets
Manager; only the first signature per tenant and container does. Other secrets can be replaced
(rotated), so a container keeps them SEACAT_TENANT_CACHE_SECONDS, as it keeps a tenant's
configuration: a rotation reaches every container within that time.
"""

from __future__ import annotations

import threading
import time

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib import aws
from chalicelib.ca import keys
from chalicelib.errors import InvalidInput, SecretAlreadyExists, Unavailable
from chalicelib.settings import get_settings

_cache: dict[str, ec.EllipticCurvePrivateKey] = {}
_secrets: dict[str, tuple[float, bytes]] = {}  # name -> (monotonic time read or written, value)
_lock = threading.Lock()
# The kinds put_secret may write: never "ca-key", which must not be replaced.
SECRET_KINDS = frozenset({"webhook-secret"})


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


def _secret_name(tenant_id: str, kind: str) -> str:
    if kind not in SECRET_KINDS:
        raise ValueError(f"not a kind of tenant secret: {kind}")
    return f"{get_settings().secret_prefix}{tenant_id}/{kind}"


def put_secret(tenant_id: str, kind: str, value: bytes, *, replace: bool) -> str:
    """Store a tenant secret (hex in SecretString); returns its name. Raises SecretAlreadyExists if it
    exists and not ``replace``; replacing puts a new current version of the same secret."""
    settings = get_settings()
    name = _secret_name(tenant_id, kind)
    sm = aws.client("secretsmanager")
    try:
        try:
            sm.create_secret(
                Name=name,
                KmsKeyId=settings.kms_key_id,
                SecretString=value.hex(),
                Description=f"SeaCat PKI {kind} of tenant {tenant_id}",
                Tags=[{"Key": "seacat:tenant", "Value": tenant_id}, {"Key": "seacat:stage", "Value": settings.stage}],
            )
        except sm.exceptions.ResourceExistsException:
            if not replace:
                raise SecretAlreadyExists(name) from None
            sm.put_secret_value(SecretId=name, SecretString=value.hex())
    except SecretAlreadyExists:
        raise
    except Exception as exc:  # fail closed, retryable; the error never carries the value
        raise Unavailable("the key store is not available") from _scrub(exc)
    with _lock:
        _secrets[name] = (time.monotonic(), bytes(value))
    return name


def load_secret(tenant_id: str, kind: str) -> bytes | None:
    """A tenant secret, or None if it has none."""
    name = _secret_name(tenant_id, kind)
    now = time.monotonic()
    with _lock:
        hit = _secrets.get(name)
    if hit is not None and now - hit[0] < get_settings().tenant_cache_seconds:
        return hit[1]
    sm = aws.client("secretsmanager")
    try:
        stored = sm.get_secret_value(SecretId=name)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        return None
    except Exception as exc:
        raise Unavailable("the key store is not available") from _scrub(exc)
    try:
        value = bytes.fromhex(stored)
    except (TypeError, ValueError):
        raise RuntimeError(f"the secret {name} cannot be read") from None
    with _lock:
        _secrets[name] = (now, value)
    return value


def forget() -> None:
    with _lock:
        _cache.clear()
        _secrets.clear()


def _scrub(exc: Exception) -> Exception:
    # Secrets Manager errors can echo request parameters; keep only the error's class and code.
    # Timeouts and connection errors carry no response at all.
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return RuntimeError(f"{type(exc).__name__} {code}".strip())
