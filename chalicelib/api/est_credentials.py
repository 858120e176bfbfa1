"""Admin routes for EST enrolment credentials: create (the password in that answer only), list, read,
revoke. A tenant token reaches its own tenant's; an operator token every tenant's."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Blueprint, Response

from chalicelib.api import auth, media
from chalicelib.api.errors import json_errors, json_response
from chalicelib.errors import InvalidInput
from chalicelib.service.ids import validate_tenant_id

bp = Blueprint(__name__)


@bp.route("/{tenant}/est/credentials", methods=["POST"], content_types=["application/json"])
@json_errors
def create_credential(tenant: str) -> Response:
    """201 with the username and the password: shown here only, stored as a hash."""
    from chalicelib.ca.profiles import SEACAT
    from chalicelib.service import credentials
    from chalicelib.service.csr import get_profile

    validate_tenant_id(tenant)
    request = bp.current_request
    auth.require(request, tenant)
    body = media.json_object(request)
    unknown = sorted(set(body) - {"profile", "uses", "expiresIn", "label"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    profile = body.get("profile")
    if not isinstance(profile, str) or not credentials.PROFILE_RE.fullmatch(profile) or profile == SEACAT:
        raise InvalidInput("the name of one of the tenant's certificate profiles (not seacat)", field="profile")
    get_profile(tenant, profile)  # 404 naming the profile when the tenant has none of that name
    uses = body.get("uses", 1)
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= credentials.MAX_USES:
        raise InvalidInput(f"a whole number from 1 to {credentials.MAX_USES}", field="uses")
    if "expiresIn" not in body:
        raise InvalidInput("how long the credential is good for: seconds, or 30m, 12h, 7d", field="expiresIn")
    lifetime = credentials.parse_lifetime(body["expiresIn"])
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > credentials.MAX_LABEL):
        raise InvalidInput(f"a string of at most {credentials.MAX_LABEL} characters", field="label")
    credential, password = credentials.create(tenant, profile, uses, lifetime, label)
    return json_response({**credentials.to_json(credential), "password": password}, 201)


@bp.route("/{tenant}/est/credentials", methods=["GET"])
@json_errors
def list_credentials(tenant: str) -> Response:
    """The tenant's credentials, newest first, paginated (``limit``, ``next``); never a password."""
    from chalicelib.service import credentials
    from chalicelib.service.approvals import page_size

    validate_tenant_id(tenant)
    request = bp.current_request
    auth.require(request, tenant)
    params: Mapping[str, str] = request.query_params or {}
    unknown = sorted(set(params) - {"limit", "next"})
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    found, next_token = credentials.list_page(tenant, page_size(params.get("limit")), params.get("next"))
    items = [credentials.to_json(c) for c in found]
    return json_response({"items": items, "count": len(items), "next": next_token})


@bp.route("/{tenant}/est/credentials/{username}", methods=["GET"])
@json_errors
def get_credential(tenant: str, username: str) -> Response:
    from chalicelib.service import credentials

    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    return json_response(credentials.to_json(credentials.get(tenant, username)))


@bp.route("/{tenant}/est/credentials/{username}/revoke", methods=["PUT"])
@json_errors
def revoke_credential(tenant: str, username: str) -> Response:
    """Revoke at once (idempotent); enrolments already signed keep their certificates."""
    from chalicelib.service import credentials

    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    return json_response(credentials.to_json(credentials.revoke(tenant, username)))
