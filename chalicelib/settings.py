"""Service configuration: the only module that reads ``os.environ``.

Read lazily at the first request (never at import) so that tests and the local emulator can set the
environment first, and so a Lambda cold start does no work it does not need.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# Where the ports live: "aws" (DynamoDB and Secrets Manager: Lambda, `make run-emulator`, the tests) or
# "sqlite" (one SQLite file and the local key store in SEACAT_DATA_DIR: `make run`, self-hosting).
BACKENDS = ("aws", "sqlite")


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    secret_prefix: str
    kms_key_id: str
    aws_endpoint_url: str | None
    tenant_cache_seconds: float
    revocation_cache_seconds: float
    max_json_body: int
    webhook_timeout_seconds: float
    webhook_allow_private: bool  # may the approve webhook reach loopback, private, link-local addresses
    log_level: str
    backend: str = "aws"
    data_dir: str | None = None  # the sqlite backend's directory (its database, its key-encryption key)
    local_kek: str | None = field(default=None, repr=False)  # base64 of the local key store's 32-byte KEK
    # Days a retired or revoked CA key's secret can still be restored (Secrets Manager's 7-30).
    key_recovery_days: int = 30
    # OCSP responses: nextUpdate - thisUpdate and Cache-Control max-age (how long a cache, a CDN or
    # NGINX's ssl_ocsp_cache, may keep a status: the revocation delay of a gateway that caches them).
    ocsp_validity_seconds: int = 60

    def table(self, name: str) -> str:
        return f"{self.table_prefix}-{name}"


class SettingsError(RuntimeError):
    pass


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _backend(env: Mapping[str, str]) -> str:
    backend = env.get("SEACAT_BACKEND") or "aws"
    if backend not in BACKENDS:
        raise SettingsError(f"SEACAT_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "sqlite" and not env.get("SEACAT_DATA_DIR"):
        raise SettingsError("SEACAT_BACKEND=sqlite needs SEACAT_DATA_DIR, the directory that holds its database")
    return backend


def load_settings(env: Mapping[str, str]) -> Settings:
    stage = env.get("SEACAT_STAGE", "local")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "eu-west-1"
    return Settings(
        stage=stage,
        region=region,
        table_prefix=env.get("SEACAT_TABLE_PREFIX", f"seacat-{stage}"),
        secret_prefix=env.get("SEACAT_SECRET_PREFIX", f"seacat/{stage}/").rstrip("/") + "/",
        kms_key_id=env.get("SEACAT_KMS_KEY_ID", f"alias/seacat-{stage}"),
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        tenant_cache_seconds=_float(env, "SEACAT_TENANT_CACHE_SECONDS", 5.0),
        revocation_cache_seconds=_float(env, "SEACAT_REVOCATION_CACHE_SECONDS", 5.0),
        max_json_body=int(_float(env, "SEACAT_MAX_JSON_BODY", 64 * 1024)),
        webhook_timeout_seconds=_float(env, "SEACAT_WEBHOOK_TIMEOUT", 5.0),
        webhook_allow_private=_bool(env, "SEACAT_WEBHOOK_ALLOW_PRIVATE", False),
        log_level=env.get("SEACAT_LOG_LEVEL", "INFO").upper(),
        backend=_backend(env),
        data_dir=env.get("SEACAT_DATA_DIR") or None,
        local_kek=env.get("SEACAT_LOCAL_KEK") or None,
        key_recovery_days=_recovery_days(env),
        ocsp_validity_seconds=_ocsp_validity(env),
    )


def _ocsp_validity(env: Mapping[str, str]) -> int:
    seconds = _float(env, "SEACAT_OCSP_VALIDITY_SECONDS", 60)
    if seconds != int(seconds) or not 1 <= seconds <= 7 * 86400:
        raise SettingsError(f"SEACAT_OCSP_VALIDITY_SECONDS must be whole seconds from 1 to 604800, got {seconds!r}")
    return int(seconds)


def _recovery_days(env: Mapping[str, str]) -> int:
    days = _float(env, "SEACAT_KEY_RECOVERY_DAYS", 30)
    if days != int(days) or not 7 <= days <= 30:
        raise SettingsError(f"SEACAT_KEY_RECOVERY_DAYS must be a whole number of days from 7 to 30, got {days!r}")
    return int(days)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings(os.environ)
