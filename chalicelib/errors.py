"""Domain errors: the only exceptions that code below the API layer raises on purpose.

Each carries a stable ``code`` and a message safe to show a client; ``field`` names the
offending input where there is one. ``chalicelib.api.errors`` maps them to HTTP exactly once.
Anything else is an internal fault and becomes a generic 500 (or a 503 where retrying helps).
"""

from __future__ import annotations


class PkiError(Exception):
    code = "PkiError"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(PkiError):
    """Malformed or semantically invalid client input (400)."""

    code = "InvalidInput"
    status = 400


class PayloadTooLarge(InvalidInput):
    code = "PayloadTooLarge"
    status = 413


class Unauthenticated(PkiError):
    code = "Unauthenticated"
    status = 401


class Forbidden(PkiError):
    """The caller is known but the policy refuses (blocked identity, webhook refusal)."""

    code = "Forbidden"
    status = 403


class NotFound(PkiError):
    """Absent, or present but belonging to another tenant: both look the same."""

    code = "NotFound"
    status = 404


class Conflict(PkiError):
    code = "Conflict"
    status = 409


class NotAcceptable(PkiError):
    code = "NotAcceptable"
    status = 406


class SecretAlreadyExists(Exception):
    """Key store: the tenant's secret exists already (a concurrent or an interrupted earlier create).

    Internal signal between the key store and the tenant service, never shown to a client."""


class Unavailable(PkiError):
    """A dependency failed (webhook, AWS throttling); the client may retry later."""

    code = "Unavailable"
    status = 503

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
