"""Tenant CA private keys, and other per-tenant secrets (the approve webhook's signing key), in AWS
Secrets Manager secrets encrypted with the project's KMS key.

The decrypted CA key is cached in the container, so issuing a certificate does not call Secrets
Manager; only the first signature per tenant and container does. Other secrets can be replaced
(rotated), so a container keeps them SEACAT_TENANT_CACHE_SECONDS, as it keeps a tenant's
configuration: a rotation reaches every container within that time.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib import aws
from chalicelib.ca import keys
from chalicelib.cache import Cache, Missing
from chalicelib.errors import InvalidInput, SecretAlreadyExists, Unavailable
from chalicelib.keystore import replaceable_kind
from chalicelib.settings import get_settings


class SecretsManagerKeyStore:
    """The KeyStore port on Secrets Manager; its caches are the context's (chalicelib/context.py)."""

    def __init__(self, keys: Cache[str, ec.EllipticCurvePrivateKey], secrets: Cache[str, bytes]) -> None:
        self._keys = keys
        self._secrets = secrets

    def secret_name(self, tenant_id: str, fingerprint: str | None = None) -> str:
        return f"{get_settings().secret_prefix}{tenant_id}/ca-key" + (f"-{fingerprint[:16]}" if fingerprint else "")

    def create(self, tenant_id: str, key: ec.EllipticCurvePrivateKey, *, name: str | None = None) -> str:
        """Store a new tenant key; returns the secret name. Raises SecretAlreadyExists (also for a
        secret of that name scheduled for deletion)."""
        settings = get_settings()
        name = name or self.secret_name(tenant_id)
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
        except sm.exceptions.InvalidRequestException as exc:
            if _scheduled_for_deletion(exc):  # the name is taken until the recovery window ends
                raise SecretAlreadyExists(name) from _scrub(exc)
            raise Unavailable("the key store is not available") from _scrub(exc)
        except Exception as exc:  # botocore ClientError, endpoint errors: fail closed, retryable
            raise Unavailable("the key store is not available") from _scrub(exc)
        self._keys.put(name, key)
        return name

    def schedule_deletion(self, name: str, recovery_days: int) -> bool:
        """DeleteSecret with a recovery window: the secret can be restored (RestoreSecret) until it ends."""
        if "/ca-key" not in name:
            raise ValueError("only CA key secrets are deleted here")
        self._keys.pop(name)
        sm = aws.client("secretsmanager")
        try:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        except sm.exceptions.ResourceNotFoundException:
            return False  # gone already
        except sm.exceptions.InvalidRequestException as exc:
            if _scheduled_for_deletion(exc):
                return False  # scheduled already (a retry)
            raise Unavailable("the key store is not available") from _scrub(exc)
        except Exception as exc:
            raise Unavailable("the key store is not available") from _scrub(exc)
        return True

    def load(self, name: str) -> ec.EllipticCurvePrivateKey:
        cached = self._keys.get(name)
        if not isinstance(cached, Missing):
            return cached
        sm = aws.client("secretsmanager")
        try:
            value = sm.get_secret_value(SecretId=name)["SecretString"]
        except Exception as exc:
            raise Unavailable("the key store is not available") from _scrub(exc)
        try:
            key = keys.load_ca_private_key_pem(value, curves=keys.ROTATION_CURVES)
        except InvalidInput:
            # The stored key is damaged: a server fault, never the caller's bad input.
            raise RuntimeError(f"the CA key in secret {name} cannot be read") from None
        self._keys.put(name, key)
        return key

    def _secret_name(self, tenant_id: str, kind: str) -> str:
        if not replaceable_kind(kind):
            raise ValueError(f"not a kind of tenant secret: {kind}")
        return f"{get_settings().secret_prefix}{tenant_id}/{kind}"

    def put_secret(self, tenant_id: str, kind: str, value: bytes, *, replace: bool) -> str:
        """Store a tenant secret (hex in SecretString); returns its name. Raises SecretAlreadyExists if it
        exists and not ``replace``; replacing puts a new current version of the same secret."""
        settings = get_settings()
        name = self._secret_name(tenant_id, kind)
        sm = aws.client("secretsmanager")
        try:
            try:
                sm.create_secret(
                    Name=name,
                    KmsKeyId=settings.kms_key_id,
                    SecretString=value.hex(),
                    Description=f"SeaCat PKI {kind} of tenant {tenant_id}",
                    Tags=[
                        {"Key": "seacat:tenant", "Value": tenant_id},
                        {"Key": "seacat:stage", "Value": settings.stage},
                    ],
                )
            except sm.exceptions.ResourceExistsException:
                if not replace:
                    raise SecretAlreadyExists(name) from None
                sm.put_secret_value(SecretId=name, SecretString=value.hex())
        except SecretAlreadyExists:
            raise
        except Exception as exc:  # fail closed, retryable; the error never carries the value
            raise Unavailable("the key store is not available") from _scrub(exc)
        self._secrets.put(name, bytes(value))
        return name

    def load_secret(self, tenant_id: str, kind: str) -> bytes | None:
        """A tenant secret, or None if it has none."""
        name = self._secret_name(tenant_id, kind)
        hit = self._secrets.get(name)
        if not isinstance(hit, Missing):
            return hit
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
        self._secrets.put(name, value)
        return value

    def forget(self) -> None:
        """Forget what this container holds (the next load reads Secrets Manager)."""
        self._keys.clear()
        self._secrets.clear()


def _scheduled_for_deletion(exc: Exception) -> bool:
    """Secrets Manager's InvalidRequestException for a secret already marked for deletion."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
    return re.search(r"marked (for )?delet|scheduled for deletion", message) is not None


def _scrub(exc: Exception) -> Exception:
    # Secrets Manager errors can echo request parameters; keep only the error's class and code.
    # Timeouts and connection errors carry no response at all.
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return RuntimeError(f"{type(exc).__name__} {code}".strip())
