"""App-wide HTTP plumbing: binary media types, a missing Accept header, log level."""

from __future__ import annotations

import logging
from typing import Any, Callable

from chalice.app import Chalice
from chalice.app import CaseInsensitiveMapping, Request, Response

# SeaCat clients send "Accept: */*" or no Accept at all and need raw DER back. API Gateway picks
# binary handling by the first Accept type, so every type is binary to it; Chalice then
# base64-encodes every body and API Gateway (or `chalice local`) decodes it back.
BINARY_TYPES = ["*/*"]


def register(app: Chalice) -> None:
    app.api.binary_types = list(BINARY_TYPES)

    @app.middleware("http")
    def default_accept(event: Request, get_response: Callable[[Request], Response]) -> Response:
        # RFC 9110 §12.5.1: no Accept header means any media type is acceptable. Chalice would
        # otherwise refuse to send a binary body to a client that sent no Accept header.
        if "accept" not in event.headers:
            headers: dict[str, Any] = dict(event.headers.items())
            headers["accept"] = "*/*"
            event.headers = CaseInsensitiveMapping(headers)
        return get_response(event)

    from chalicelib.settings import get_settings

    logging.getLogger("seacat").setLevel(get_settings().log_level)
    logging.getLogger("botocore").setLevel(logging.WARNING)
