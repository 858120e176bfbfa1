"""Shared store helpers: binding, pagination tokens, and translating pynamodb errors once."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from chalicelib.errors import Conflict, InvalidInput, PkiError, Unavailable
from chalicelib.settings import get_settings
from chalicelib.store import keys, models

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
    """Give pynamodb's connections the process's botocore session and one DynamoDB client.

    pynamodb keeps a session per connection and thread (``Connection._local``), and a client per
    connection: one per model class, and the transactions' (``connection()``). A session costs
    ~120 ms on a cold start, a client tens of ms, and a first enrolment touched three connections.
    They are all bound alike (``models.bind``: endpoint, region, timeouts, retries, pool), so the
    transactions' client serves them all; botocore clients are thread-safe.
    """
    from chalicelib import aws

    shared = None
    for model in models.MODELS.values():
        conn = model._get_connection().connection
        local = conn._local
        if getattr(local, "session", None) is None:
            local.session = aws.session()
        if conn._client is None:
            if shared is None:
                shared = connection().client
            conn._client = shared


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


def reset() -> None:
    """Drop the connections and the models' binding: the next call binds anew (tests switch emulators)."""
    global _connection
    _connection = None
    models.unbind()


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return keys.iso(dt)


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


MAX_PAGE_TOKEN = 2048  # characters; a token of ours is the base64 of a key of a few hundred bytes
_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_MAX_KEY_VALUE = 1024  # bytes of a key attribute value (DynamoDB's limit for a sort key; ours are far shorter)


def encode_page_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _key_types(attributes: Iterable[Any]) -> dict[str, str]:
    return {a.attr_name: a.attr_type for a in attributes if a.is_hash_key or a.is_range_key}


@functools.cache
def _start_key_schema(names: frozenset[str]) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The key a query stops at (DynamoDB's LastEvaluatedKey) for the table or index whose key
    attributes include ``names``: ((attribute, DynamoDB type), ...) and the attribute the query is
    on (the index's partition key; None for a table).

    A table query stops at the table's key; an index query at the index's key plus the table's.
    The smallest schema that has every name is the one; two different ones is a caller's error.
    """
    schemas: list[tuple[dict[str, str], str | None]] = []
    for model in models.MODELS.values():
        table = _key_types(model.get_attributes().values())
        schemas.append((table, None))
        for index in model._indexes.values():
            keys = _key_types(index.Meta.attributes.values())
            schemas.append(({**table, **keys}, index._hash_key_attribute().attr_name))
    matching = [(attrs, on) for attrs, on in schemas if names <= attrs.keys()]
    smallest = [m for m in matching if len(m[0]) == min((len(a) for a, _ in matching), default=0)]
    if not smallest or any(m != smallest[0] for m in smallest):
        raise ValueError(f"no one key schema has the attributes {sorted(names)}")
    attrs, on = smallest[0]
    return tuple(sorted(attrs.items())), on


def decode_page_token(token: str | None, prefixes: dict[str, str]) -> dict[str, Any] | None:
    """Decode a page token into the ExclusiveStartKey of the query it continues, or 400 naming ``next``.

    ``prefixes`` maps key attributes to the prefix each must carry (the caller's tenant): they also
    name the table or index the list reads (``_start_key_schema``). The key must be exactly that
    schema's: its attribute names and no other, each value ``{"<type>": <non-empty string>}`` of
    the attribute's type, the queried partition key equal to its value in ``prefixes``, and the
    token itself the one ``encode_page_token`` writes for it. moto takes a key with an extra or a
    misnamed attribute, or a value of another type; DynamoDB refuses it (ValidationException).
    """
    if not token:
        return None
    schema, on = _start_key_schema(frozenset(prefixes))

    def refused() -> InvalidInput:
        return InvalidInput("not a page token of this list", field="next")

    if len(token) > MAX_PAGE_TOKEN or not _PAGE_TOKEN.fullmatch(token):
        raise refused()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise refused() from None
    if not isinstance(key, dict) or set(key) != {name for name, _ in schema}:
        raise refused()
    for name, attr_type in schema:
        value = key[name]
        if not isinstance(value, dict) or set(value) != {attr_type}:
            raise refused()
        text = value[attr_type]
        try:
            size = len(text.encode("utf-8")) if isinstance(text, str) else 0
        except UnicodeEncodeError:  # a lone surrogate (an escaped \ud800 in the JSON) is not UTF-8
            size = 0
        if not 0 < size <= _MAX_KEY_VALUE:
            raise refused()
        prefix = prefixes.get(name)
        if prefix is not None and not (text == prefix if name == on else text.startswith(prefix)):
            raise refused()
    if encode_page_token(key) != token:  # only the token this service wrote: no other spelling of it
        raise refused()
    return key
