"""Gateway credential routes: create (shown once) and drop the secret a tenant's NGINX sends."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api import auth
from chalicelib.api.errors import json_errors, json_response
from chalicelib.errors import InvalidInput
from chalicelib.service import gateway_credentials as service
from chalicelib.service.ids import validate_tenant_id

bp = Blueprint(__name__)


@bp.route("/{tenant}/gateway/credential", methods=["POST"])
@json_errors
def create(tenant: str) -> Response:
    """A new gateway credential, shown in this answer only; the previous one stays valid until dropped."""
    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    credential, record = service.create(tenant)
    body = {
        "credential": credential,
        "header": service.HEADER,
        "valid": len(record.config.gateway_credentials),
    }
    return json_response(body, 201)  # no-store, as every JSON answer


@bp.route("/{tenant}/gateway/credential", methods=["DELETE"])
@json_errors
def drop(tenant: str) -> Response:
    """Drop the previous credential (``?previous=true``) or every one (none is required any more)."""
    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    query: dict[str, str] = dict(bp.current_request.query_params or {})
    unknown = sorted(set(query) - {"previous"})
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    previous = query.get("previous", "false")
    if previous not in ("true", "false"):
        raise InvalidInput("must be true or false", field="previous")
    record = service.drop(tenant, previous_only=previous == "true")
    return json_response({"valid": len(record.config.gateway_credentials)})
