"""Request bodies and content negotiation: JSON in, PEM/DER/JSON out."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Request, Response

from chalicelib.ca.pem import der_to_pem
from chalicelib.errors import InvalidInput, NotAcceptable, PayloadTooLarge
from chalicelib.settings import get_settings

PEM = "application/x-pem-file"
DER = "application/pkix-cert"
CRL = "application/pkix-crl"
JSON = "application/json"
_DER_ALIASES = (DER, "application/x-x509-ca-cert", "application/x-x509-user-cert", "application/octet-stream")


def raw_body(request: Request, limit: int) -> bytes:
    body = request.raw_body or b""
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    if len(data) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", field="body")
    return data


def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    data = raw_body(request, get_settings().max_json_body)
    if not data.strip():
        if required:
            raise InvalidInput("a JSON object is required", field="body")
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed JSON: {getattr(exc, 'msg', 'not UTF-8')}", field="body") from None
    except RecursionError:
        raise InvalidInput("JSON nested too deeply", field="body") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return value


def preferred(request: Request, offers: tuple[str, ...]) -> str:
    """Pick the first offer the Accept header admits (q-values and wildcards honoured simply)."""
    accept = request.headers.get("accept") or "*/*"
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and media:
            ranked.append((-q, index, media.lower()))
    for _, _, media in sorted(ranked):
        for offer in offers:
            if media == "*/*" or media == offer or (media.endswith("/*") and offer.startswith(media[:-1])):
                return offer
            if offer == DER and media in _DER_ALIASES:
                return DER
    raise NotAcceptable("acceptable: " + ", ".join(offers), field="Accept")


CERTIFICATE_TYPES = (JSON, PEM, DER)


def certificate_response(request: Request, der: bytes, meta: dict[str, object], status: int = 200) -> Response:
    from chalicelib.api.errors import NO_STORE, json_response

    kind = preferred(request, CERTIFICATE_TYPES)
    if kind == PEM:
        return Response(body=der_to_pem(der), status_code=status, headers={"Content-Type": PEM, **NO_STORE})
    if kind == DER:
        return Response(body=der, status_code=status, headers={"Content-Type": DER, **NO_STORE})
    return json_response(meta, status)
