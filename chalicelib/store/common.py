"""Shared store helpers: binding, pagination tokens, and translating pynamodb errors once."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from botocore.exceptions import BotoCoreError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from chalicelib.errors import Conflict, InvalidInput, PkiError, Unavailable
from chalicelib.settings import get_settings
from chalicelib.store import models

_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


def ready() -> None:
    models.bind(get_settings())
    _share_session()


def _share_session() -> None:
    """Give pynamodb's connections the process's botocore session instead of one session each.

    pynamodb keeps a session per connection and thread (``Connection._local``); each would cost
    ~120 ms on a cold start. Only done where the thread has none yet.
    """
    from chalicelib import aws

    for model in models.MODELS.values():
        local = model._get_connection().connection._local
        if getattr(local, "session", None) is None:
            local.session = aws.session()


_connection: Connection | None = None


def connection() -> Connection:
    """The connection transactions run on, bound like the models (region, endpoint)."""
    global _connection
    settings = get_settings()
    if _connection is None or _connection.host != settings.aws_endpoint_url:
        _connection = Connection(
            region=settings.region,
            host=settings.aws_endpoint_url,
            connect_timeout_seconds=models.AWS_CONNECT_TIMEOUT,
            read_timeout_seconds=models.AWS_READ_TIMEOUT,
            max_retry_attempts=models.AWS_ATTEMPTS,
            max_pool_connections=models.AWS_POOL_CONNECTIONS,
        )
    if getattr(_connection._local, "session", None) is None:
        from chalicelib import aws

        _connection._local.session = aws.session()
    return _connection


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cause_code(exc: PynamoDBException) -> str:
    # pynamodb reads the code from the botocore ClientError it wraps; a timeout or a connection
    # error has no response, and asking then raises AttributeError.
    try:
        return exc.cause_response_code or ""
    except AttributeError:
        return ""


def is_conditional_failure(exc: PynamoDBException) -> bool:
    if isinstance(exc, TransactWriteError):
        # A concurrent transaction on the same item is the same race as a failed condition.
        return any(
            r is not None and r.code in ("ConditionalCheckFailed", "TransactionConflict")
            for r in (exc.cancellation_reasons or [])
        )
    return _cause_code(exc) == "ConditionalCheckFailedException"


@contextlib.contextmanager
def translated(conflict_message: str = "the item was changed concurrently") -> Iterator[None]:
    """Map storage failures to domain errors: conflicts to 409, the rest to a retryable 503."""
    try:
        yield
    except PkiError:
        raise
    except PynamoDBException as exc:
        if is_conditional_failure(exc):
            raise Conflict(conflict_message) from None
        if _cause_code(exc) in _RETRYABLE or isinstance(exc, TransactWriteError):
            raise Unavailable("the database is busy, retry later") from None
        raise Unavailable("the database is not available") from None
    except BotoCoreError:  # a timeout or a connection failure that pynamodb did not wrap
        raise Unavailable("the database is not available") from None


def save_all(tx: Any, entries: Sequence[Any]) -> None:
    """Add audit entries (or other unconditional puts) to a transaction."""
    for entry in entries:
        tx.save(entry)


def encode_page_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str | None, prefixes: dict[str, str]) -> dict[str, Any] | None:
    """Decode a page token; refuse one whose key attributes point outside the caller's tenant.

    ``prefixes`` maps each key attribute that must be present to the prefix it must carry.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("not a page token of this list", field="next") from None
    if not isinstance(key, dict) or not all(
        isinstance(v, dict) and len(v) == 1 and isinstance(next(iter(v.values())), str) for v in key.values()
    ):
        raise InvalidInput("not a page token of this list", field="next")
    for name, prefix in prefixes.items():
        value = key.get(name)
        if value is None or not next(iter(value.values())).startswith(prefix):
            raise InvalidInput("not a page token of this list", field="next")
    return key
