"""Lazily created, cached boto3 clients.

boto3 is imported on first use only: routes that never touch Secrets Manager (the gateway's
nginx_authenticate, the public CA bundle) do not pay its import on a Lambda cold start.
"""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    return boto3.session.Session().client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        # Bounded so a hung call ends well inside API Gateway's 29 s integration timeout.
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5),
    )


def reset() -> None:
    """Forget cached clients (tests switch emulators between cases)."""
    client.cache_clear()
