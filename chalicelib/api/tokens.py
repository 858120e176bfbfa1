"""Operator routes for tenant-scoped admin tokens."""

from __future__ import annotations

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
    """Create a tenant-scoped token; the token is in this answer only, never again."""
    from chalicelib.service import tenants, tokens

    request = bp.current_request
    auth.require(request, operator=True)
    body = media.json_object(request)
    unknown = sorted(set(body) - {"tenant", "label"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    tenant = body.get("tenant")
    if not isinstance(tenant, str):
        raise InvalidInput("the tenant the token is for is required", field="tenant")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 200):
        raise InvalidInput("must be a string of at most 200 characters", field="label")
    tenants.get_tenant(tenant)
    token_id, token = tokens.issue(tenant, label)
    return json_response({"tokenId": token_id, "token": token, "tenant": tenant, "label": label}, 201)


@bp.route("/tokens/{token_id}", methods=["DELETE"])
@json_errors
def revoke_token(token_id: str) -> Response:
    """Revoke a token; it stops working at once. Idempotent."""
    from chalicelib.service import tokens

    auth.require(bp.current_request, operator=True)
    return json_response(tokens.revoke(token_id))
