"""The WSGI callable that serves app.py's Chalice app, and nothing more.

Each request is handed, as it came (method, raw request target, headers, body), to Chalice's own
local gateway, ``chalice.local.LocalGateway``: route matching, binary types, authorizers and error
shapes are exactly those of `chalice local`; there is one route table and no second copy of any
handler. Its answer goes back as it is, framed as `chalice local` frames it (Content-Length, a
default Content-Type of application/json, base64 bodies decoded).

Thread-safe like `chalice local`: the app's ``current_request`` is made per thread (Chalice's own
LocalChalice), so a worker serves several requests at once. The app's ports are built lazily, at the
first request that needs them, in the process that serves it (chalicelib/context.py).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    CustomLocalChalice,
    LambdaContext,
    LocalChalice,
    LocalGateway,
    LocalGatewayException,
    MatchResult,
    RouteMatcher,
)

ROOT = Path(__file__).resolve().parent.parent
# API Gateway's payload limit: larger bodies are refused before they are read.
MAX_BODY = 10 * 1024 * 1024
# What a path without a route gets (403, as API Gateway answers it), whatever the request carried.
NO_ROUTE_BODY = b'{"message": "Missing Authentication Token"}'
# Hop-by-hop headers are the server's business, never the application's (PEP 3333).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding"}
    | {"upgrade"}
)

StartResponse = Callable[..., Any]


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


# The one route whose parameter may hold a "/": an OCSP request in a GET, base64 (RFC 6960 A.1).
_OCSP_GET = re.compile(r"(/[^/]+/ocsp/)(.+)", re.DOTALL)
# Not "%" (PATH_INFO is decoded) nor ";" (an encoded one would end the path at the gateway's parser).
_PATH_SAFE = "/:@!$&'()*+,=~"


def request_target(environ: dict[str, Any]) -> str:
    """The path and query as the client sent them (what `chalice local` hands its gateway), but for
    leading slashes: ``//evil.example/console/`` is a path, which the gateway's URL parser would
    read as a host and the path after it (so the console would be served at any such URL).

    A server that gives no raw target (granian) gives PATH_INFO percent-decoded (each byte a
    Latin-1 character, as PEP 3333 has it), so it is encoded again, byte for byte; an encoded "/"
    (%2F) cannot be told from a "/" then. No route parameter may hold one but the OCSP request of
    ``GET /{tenant}/ocsp/{request}``, whose base64 is encoded whole again (and so also works from
    clients that do not encode its "/", as some OpenSSL versions do not)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        target = str(raw)
        return "/" + target.lstrip("/") if target.startswith("//") else target
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    ocsp = _OCSP_GET.fullmatch(path)
    if ocsp is not None:
        path = _quote(ocsp.group(1), _PATH_SAFE) + _quote(ocsp.group(2), "")
    else:
        path = _quote(path, _PATH_SAFE)
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _quote(decoded: str, safe: str) -> str:
    return quote(decoded, safe=safe, encoding="latin-1", errors="strict")


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers by their usual names (Content-Type, X-Ssl-Client-Verify, ...)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        headers["-".join(part.capitalize() for part in name.split("_"))] = str(value)
    return headers


class BodyTooLarge(Exception):
    pass


def request_body(environ: dict[str, Any]) -> bytes | None:
    """The body (None when there is none, as `chalice local` has it); BodyTooLarge past MAX_BODY."""
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH") or ""
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            raise BodyTooLarge
        return bytes(stream.read(length)) if length else None
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        body = bytes(stream.read(MAX_BODY + 1))
        if len(body) > MAX_BODY:
            raise BodyTooLarge
        return body or None
    return None


class _RememberingRouteMatcher(RouteMatcher):
    """Chalice's route matcher (a scan of every route per request), remembering its answers for the
    request targets seen most recently: the hot paths (enrolment, nginx_authenticate) have one
    target per tenant. The answer is exactly the scan's; each caller gets its own copy to change.
    Only short targets without a query are remembered: what callers invent holds at most ``size``
    entries of REMEMBERED_LENGTH bytes, not of the 16 KiB a request's head may have."""

    REMEMBERED_LENGTH = 256

    def __init__(self, route_urls: list[str], size: int = 4096) -> None:
        super().__init__(route_urls)
        self._remembered = functools.lru_cache(maxsize=size)(super().match_route)

    def match_route(self, url: str) -> MatchResult:
        if len(url) > self.REMEMBERED_LENGTH or "?" in url:
            return super().match_route(url)
        found = self._remembered(url)  # a target that matches nothing raises each time: not remembered
        return MatchResult(found.route, dict(found.captured), {k: list(v) for k, v in found.query_params.items()})


class _Gateway(LocalGateway):
    """LocalGateway with the remembering route matcher and the Lambda context's settings read once
    (the stage configuration does not change while the server runs)."""

    def __init__(self, app: Chalice, config: Config) -> None:
        super().__init__(app, config)
        self.event_converter._route_matcher = _RememberingRouteMatcher(list(app.routes))
        timeout = config.lambda_timeout
        self._function_name = str(config.function_name)
        self._memory_size = int(config.lambda_memory_size)
        self._max_runtime_ms = int(self.MAX_LAMBDA_EXECUTION_TIME if timeout is None else timeout) * 1000

    def _generate_lambda_context(self) -> LambdaContext:
        return LambdaContext(self._function_name, self._memory_size, self._max_runtime_ms)


class ChaliceWSGI:
    """A WSGI application in front of a Chalice app, through Chalice's local API Gateway."""

    def __init__(self, app: Chalice, config: Config) -> None:
        if not isinstance(app, LocalChalice):  # what chalice.local.create_local_server does
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        self.app = app
        self.gateway = _Gateway(app, config)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = request_body(environ)
        except BodyTooLarge:
            message = {
                "error": "PayloadTooLarge",
                "message": f"the body is larger than {MAX_BODY} bytes",
                "field": "body",
            }
            return self._send(start_response, 413, {"Content-Type": "application/json"}, json.dumps(message))
        method = str(environ["REQUEST_METHOD"])
        try:
            response = self.gateway.handle_request(method, request_target(environ), request_headers(environ), body)
        except LocalGatewayException as error:
            # No route matched: API Gateway's status, with one constant body. Chalice's local gateway,
            # like API Gateway, quotes a request's Authorization header in this answer (the caller's
            # token, in a body a console or a support ticket shows; infra/api.yaml sets the same
            # constant body on AWS). The app's security headers too: it never passes the middleware.
            from chalicelib.api.middleware import SECURITY_HEADERS

            refusal = {**dict(error.headers), **SECURITY_HEADERS, "Cache-Control": "no-store"}
            return self._send(start_response, error.CODE, refusal, NO_ROUTE_BODY)
        headers: dict[str, Any] = dict(response.get("headers") or {})
        headers.update(response.get("multiValueHeaders") or {})
        out = response.get("body")
        if response.get("isBase64Encoded") and out is not None:
            out = base64.b64decode(out)
        return self._send(start_response, int(response["statusCode"]), headers, out)

    @staticmethod
    def _send(
        start_response: StartResponse, code: int, headers: dict[str, Any], body: str | bytes | None
    ) -> list[bytes]:
        out: list[tuple[str, str]] = []
        if body is None:
            payload = b""
        else:
            payload = body if isinstance(body, bytes) else body.encode("utf-8")
            out.append(("Content-Type", str(headers.pop("Content-Type", "application/json"))))
        out.append(("Content-Length", str(len(payload))))
        for name, value in headers.items():
            if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                continue
            for one in value if isinstance(value, list) else [value]:
                out.append((str(name), str(one)))
        start_response(_status(code), out)
        return [payload]


def chalice_config(stage: str) -> Config:
    """The stage's configuration from .chalice/config.json, as `chalice local --stage` reads it."""
    from_disk = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return Config(chalice_stage=stage, config_from_disk=from_disk)


def create_application(stage: str | None = None) -> ChaliceWSGI:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import importlib

    app: Chalice = importlib.import_module("app").app  # app.py, the one the Lambda serves
    return ChaliceWSGI(app, chalice_config(stage or os.environ.get("SEACAT_LOCAL_STAGE", "local")))


@functools.cache
def _default() -> ChaliceWSGI:
    return create_application()


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """``embedded.wsgi:application``, for any WSGI server: app.py on SEACAT_LOCAL_STAGE (default local),
    built at the first request (importing this module changes nothing)."""
    return _default()(environ, start_response)
