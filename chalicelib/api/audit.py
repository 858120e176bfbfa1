"""The audit trail, for administrators."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Blueprint, Response

from chalicelib.api import auth
from chalicelib.api.errors import json_errors, json_response
from chalicelib.errors import InvalidInput

bp = Blueprint(__name__)


@bp.route("/audit", methods=["GET"])
@json_errors
def audit_events() -> Response:
    """Admin: security events of one tenant, newest first. Query: ``tenant`` (required; operators may
    ask for ``_``, the events of no tenant), ``from``/``to`` (ISO-8601; default the last 24 hours,
    at most 31 days), ``type`` (an event name), ``limit`` (1-100), ``next`` (page token)."""
    from chalicelib.service import approvals, audit

    request = bp.current_request
    params: Mapping[str, str] = request.query_params or {}
    tenant = params.get("tenant")
    if not tenant:
        raise InvalidInput("the tenant whose events to list is required", field="tenant")
    if tenant == "_":
        auth.require(request, operator=True)
    else:
        from chalicelib.service.ids import validate_tenant_id

        validate_tenant_id(tenant)
        auth.require(request, tenant)
    items, next_token = audit.search(
        None if tenant == "_" else tenant,
        params.get("from"),
        params.get("to"),
        params.get("type"),
        approvals.page_size(params.get("limit")),
        params.get("next"),
    )
    return json_response({"items": items, "count": len(items), "next": next_token})
