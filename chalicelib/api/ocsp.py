"""OCSP routes (public): RFC 6960 over HTTP (POST), and the RFC 5019 GET whose last path segment is the
URL-encoded base64 of the DER request. Every answer is HTTP 200 with an OCSPResponse (a request the
responder cannot read is the OCSP status malformedRequest, not an HTTP error), as OCSP clients expect."""

from __future__ import annotations

import base64
import binascii
import email.utils
import urllib.parse
from datetime import UTC, datetime

from chalice.app import Blueprint, Response

from chalicelib import observability
from chalicelib.ca.ocsp import MALFORMED, MAX_REQUEST_SIZE, unsuccessful

bp = Blueprint(__name__)

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"


@bp.route("/{tenant}/ocsp", methods=["POST"], content_types=[OCSP_REQUEST])
def ocsp_post(tenant: str) -> Response:
    """Public: an OCSP request (DER) in the body; never cached (a POST is not)."""
    body = bp.current_request.raw_body or b""
    data = body if isinstance(body, bytes) else body.encode("latin-1")
    return _answer(tenant, data if len(data) <= MAX_REQUEST_SIZE else b"", cacheable=False)


@bp.route("/{tenant}/ocsp/{request}", methods=["GET"])
def ocsp_get(tenant: str, request: str) -> Response:
    """Public: RFC 5019 §5: GET {url}/{url-encoding of base64 encoding of the DER request}. Cacheable
    (Cache-Control max-age up to nextUpdate) unless the request carries a nonce."""
    return _answer(tenant, decode_get(request), cacheable=True)


def decode_get(segment: str) -> bytes:
    """The DER request of a GET path segment, or b"" (answered malformedRequest). The segment arrives
    still percent-encoded (Chalice's local gateway) or decoded (API Gateway): unquoting twice is
    harmless, base64 has no '%'. A '+' decoded to ' ' by a form-style encoder is put back, and the
    URL-safe alphabet and missing padding are accepted too."""
    text = urllib.parse.unquote(segment).strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    if len(text) > MAX_REQUEST_SIZE * 4 // 3 + 4:
        return b""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _answer(tenant: str, request_der: bytes, *, cacheable: bool) -> Response:
    from chalicelib.service import ocsp

    if request_der:
        result = ocsp.respond(tenant, request_der)
    else:
        result = ocsp.Result(unsuccessful(MALFORMED), "malformedRequest")
    observability.metric("OcspResponses", Status=result.status)
    headers: dict[str, str | list[str]] = {"Content-Type": OCSP_RESPONSE}
    if cacheable and not result.nonce and result.next_update is not None and result.this_update is not None:
        # RFC 5019 §6.2: max-age no later than nextUpdate; a CDN may serve it that long.
        max_age = max(0, int((result.next_update - datetime.now(UTC)).total_seconds()))
        headers["Cache-Control"] = f"public, max-age={max_age}, no-transform, must-revalidate"
        headers["Last-Modified"] = email.utils.format_datetime(result.this_update, usegmt=True)
        headers["Expires"] = email.utils.format_datetime(result.next_update, usegmt=True)
    else:
        headers["Cache-Control"] = "no-store"  # unsuccessful, nonce-bound, or a POST
    return Response(body=result.der, status_code=200, headers=headers)
