"""The one place where domain errors become HTTP answers.

Admin and public JSON routes answer ``{"error": <code>, "message": <reason>, "field": <input>}``;
SeaCat client routes answer a status code with a short plain-text reason (the clients only look at
the status); EST routes too, as RFC 7030 §4.2.3 has it (a 401 with its Basic challenge). Unexpected faults are logged and answered with a generic 500 (or 503 with
Retry-After when the cause is a throttled or unavailable dependency): never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from chalice.app import Response

from chalicelib.errors import PkiError, Unavailable

log = logging.getLogger("seacat.api")

F = TypeVar("F", bound=Callable[..., Response])

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", **NO_STORE, **(headers or {})},
    )


def error_body(exc: PkiError) -> dict[str, object]:
    body: dict[str, object] = {"error": exc.code, "message": exc.message}
    if exc.field is not None:
        body["field"] = exc.field
    return body


def _retry_headers(exc: PkiError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else {}


def _internal(view: str, exc: Exception) -> PkiError:
    # Log the class and the frames, not the message: AWS and parser errors can echo request data.
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
    log.error("internal error in %s: %s at %s", view, type(exc).__name__, where)
    return PkiError("internal error")


def json_errors(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except PkiError as exc:
            if exc.status >= 500:
                log.warning("%s: %s", view.__name__, exc.message)
            return json_response(error_body(exc), exc.status, _retry_headers(exc))
        except Exception as exc:
            err = _internal(view.__name__, exc)
            return json_response(error_body(err), 500)

    return cast(F, wrapper)


def _plain_internal(view_name: str, exc: Exception) -> Response:
    """The plain-text routes' (SeaCat, EST) answer to an unexpected error: 500, logged, no detail."""
    err = _internal(view_name, exc)
    return Response(
        body=(err.message + "\n").encode("utf-8"),
        status_code=500,
        headers={"Content-Type": "text/plain; charset=utf-8", **NO_STORE},
    )


def text_errors(view: F) -> F:
    """SeaCat client routes: status code and a short reason."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except PkiError as exc:
            log.info("%s refused: %s %s", view.__name__, exc.status, exc.message)
            return Response(
                body=(exc.message + "\n").encode("utf-8"),
                status_code=exc.status,
                headers={"Content-Type": "text/plain; charset=utf-8", **NO_STORE, **_retry_headers(exc)},
            )
        except Exception as exc:
            return _plain_internal(view.__name__, exc)

    return cast(F, wrapper)


EST_REALM = 'Basic realm="SeaCat PKI EST", charset="UTF-8"'


def est_errors(view: F) -> F:
    """EST routes (RFC 7030): a status code and a human-readable plain-text reason; a 401 carries the
    WWW-Authenticate challenge HTTP requires (clients answer it with their enrolment credential)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except PkiError as exc:
            log.info("%s refused: %s %s", view.__name__, exc.status, exc.message)
            reason = f"{exc.message} ({exc.field})" if exc.field and exc.status == 400 else exc.message
            headers: dict[str, str | list[str]] = {
                "Content-Type": "text/plain; charset=utf-8",
                **NO_STORE,
                **_retry_headers(exc),
            }
            if exc.status == 401:
                headers["WWW-Authenticate"] = EST_REALM
            return Response(body=(reason + "\n").encode("utf-8"), status_code=exc.status, headers=headers)
        except Exception as exc:
            return _plain_internal(view.__name__, exc)

    return cast(F, wrapper)
