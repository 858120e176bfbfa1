"""App-wide HTTP plumbing: binary media types, a missing Accept header, the request's log context
and its one access-log line."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from chalice.app import CaseInsensitiveMapping, Chalice, Request, Response

from chalicelib import observability

# SeaCat clients send "Accept: */*" or no Accept at all and need raw DER back. API Gateway picks
# binary handling by the first Accept type, so every type is binary to it; Chalice then
# base64-encodes every body and API Gateway (or `chalice local`) decodes it back.
BINARY_TYPES = ["*/*"]

# Security headers for an API that serves no HTML; admin answers add Cache-Control: no-store.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

access = logging.getLogger("seacat.access")


def register(app: Chalice) -> None:
    app.api.binary_types = list(BINARY_TYPES)

    @app.middleware("http")
    def request_context(event: Request, get_response: Callable[[Request], Response]) -> Response:
        from chalicelib.settings import get_settings

        settings = get_settings()
        observability.setup_logging(settings.log_level, settings.stage)
        ctx: dict[str, Any] = event.context or {}
        token = observability.begin_request(
            # API Gateway's request id; a local one where the event has none (the test client).
            request_id=ctx.get("requestId") or secrets.token_hex(8),
            route=ctx.get("resourcePath"),
            method=event.method,
            tenant=(event.uri_params or {}).get("tenant"),
        )
        started = time.perf_counter()
        try:
            # RFC 9110 §12.5.1: no Accept header means any media type is acceptable. Chalice would
            # otherwise refuse to send a binary body to a client that sent no Accept header.
            if "accept" not in event.headers:
                headers: dict[str, Any] = dict(event.headers.items())
                headers["accept"] = "*/*"
                event.headers = CaseInsensitiveMapping(headers)
            response = get_response(event)
            _framework_error_as_ours(response)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            status = response.status_code
            if access.isEnabledFor(logging.INFO):
                extra: dict[str, Any] = {
                    "status": status,
                    "outcome": "ok" if status < 400 else ("refused" if status < 500 else "error"),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
                metrics = observability.take_metrics()
                if metrics:
                    extra.update(observability.emf(metrics))
                access.info("request", extra=extra)
            return response
        finally:
            observability.end_request(token)


# Chalice answers a few errors itself, before a route runs (a method the path does not take: 405; a
# Content-Type the route does not take: 415), as {"Code", "Message"}; every error of this API has the
# shape {"error", "message", "field"}.
_FRAMEWORK_ERROR_FIELDS = {415: "Content-Type", 400: "Accept"}


def _framework_error_as_ours(response: Response) -> None:
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"} and response.status_code >= 400:
        ours: dict[str, Any] = {"error": str(body["Code"]), "message": str(body["Message"])}
        field = _FRAMEWORK_ERROR_FIELDS.get(response.status_code)
        if field is not None:
            ours["field"] = field
        response.body = ours
