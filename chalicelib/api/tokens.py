"""Operator routes for tenant-scoped admin tokens."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Blueprint, Response

from chalicelib.api import auth, media
from chalicelib.api.errors import json_errors, json_response
from chalicelib.errors import InvalidInput

bp = Blueprint(__name__)


@bp.route("/whoami", methods=["GET"])
@json_errors
def whoami() -> Response:
    """Any admin token: which token it is and what it reaches (the console shows what the token may do)."""
    principal = auth.require(bp.current_request)
    return json_response(
        {"tokenId": principal.token_id, "tenant": principal.tenant_id, "operator": principal.is_operator}
    )


@bp.route("/tokens", methods=["POST"], content_types=["application/json"])
@json_errors
def create_token() -> Response:
    """Create a tenant-scoped token; the token is in this answer only, never again. ``expiresIn``
    (seconds, or 30m, 12h, 7d; at most 366 days): it stops working then; absent, when revoked."""
    from chalicelib.service import credentials, tenants, tokens

    request = bp.current_request
    auth.require(request, operator=True)
    body = media.json_object(request)
    unknown = sorted(set(body) - {"tenant", "label", "expiresIn"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    tenant = body.get("tenant")
    if not isinstance(tenant, str):
        raise InvalidInput("the tenant the token is for is required", field="tenant")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 200):
        raise InvalidInput("must be a string of at most 200 characters", field="label")
    expires_in = body.get("expiresIn")
    lifetime = None if expires_in is None else credentials.parse_lifetime(expires_in)
    tenants.get_tenant(tenant)
    stored, token = tokens.issue(tenant, label, lifetime)
    return json_response({**tokens.to_json(stored), "token": token}, 201)


@bp.route("/tokens", methods=["GET"])
@json_errors
def list_tokens() -> Response:
    """A tenant's admin tokens (``tenant`` required), newest first, paginated (``limit``, ``next``):
    id, label, times and state (active, expired, revoked); never a token or its hash."""
    from chalicelib.service import tokens
    from chalicelib.service.approvals import page_size
    from chalicelib.service.ids import validate_tenant_id
    from chalicelib.service.tenants import get_tenant

    request = bp.current_request
    auth.require(request, operator=True)
    params: Mapping[str, str] = request.query_params or {}
    unknown = sorted(set(params) - {"tenant", "limit", "next"})
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    tenant = params.get("tenant")
    if not tenant:
        raise InvalidInput("the tenant whose tokens to list is required", field="tenant")
    validate_tenant_id(tenant)
    get_tenant(tenant)
    found, next_token = tokens.list_page(tenant, page_size(params.get("limit")), params.get("next"))
    items = [tokens.to_json(t) for t in found]
    return json_response({"items": items, "count": len(items), "next": next_token})


@bp.route("/tokens/{token_id}", methods=["DELETE"])
@json_errors
def revoke_token(token_id: str) -> Response:
    """Revoke a token; it stops working at once. Idempotent."""
    from chalicelib.service import tokens

    auth.require(bp.current_request, operator=True)
    return json_response(tokens.revoke(token_id))
