"""Lazily created AWS clients that share one botocore session per thread.

A botocore session costs ~120 ms to create (it loads endpoint and model data), a client from an
existing one a few ms: the key store's Secrets Manager client and pynamodb's DynamoDB
connections all come from the same session (store/common.py hands it to pynamodb). boto3 is not
needed at all. Nothing here runs at import time, so routes that never touch AWS do not pay for it.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.settings import get_settings

_local = threading.local()  # botocore sessions are not thread-safe; clients are


def session() -> Any:
    current = getattr(_local, "session", None)
    if current is None:
        from botocore.session import get_session

        current = _local.session = get_session()
    return current


def client(service: str) -> Any:
    clients: dict[str, Any] = getattr(_local, "clients", None) or {}
    _local.clients = clients
    if service not in clients:
        from botocore.config import Config

        settings = get_settings()
        clients[service] = session().create_client(
            service,
            region_name=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            # Bounded so a hung call ends well inside API Gateway's 29 s integration timeout.
            config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5),
        )
    return clients[service]


def reset() -> None:
    """Forget the sessions and clients (tests switch emulators between cases)."""
    global _local
    _local = threading.local()
