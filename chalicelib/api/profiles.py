"""PKCS#10 signing under a profile, and the tenant's certificate profiles (admin)."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Blueprint, Response

from chalicelib import observability
from chalicelib.api import auth, media
from chalicelib.api.errors import json_errors, json_response
from chalicelib.api.schemas import certificate_meta
from chalicelib.ca.pem import der_to_pem
from chalicelib.errors import InvalidInput, PkiError
from chalicelib.service.ids import validate_tenant_id

bp = Blueprint(__name__)

# A CSR: DER (application/pkcs10, RFC 5967) or PEM text; either is read from any of these types.
CSR_TYPES = ["application/pkcs10", "application/x-pem-file", "text/plain", "application/octet-stream"]


def _query(allowed: set[str]) -> dict[str, str]:
    query: dict[str, str] = dict(bp.current_request.query_params or {})
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    return query


@bp.route("/{tenant}/x509/sign", methods=["POST"], content_types=CSR_TYPES)
@json_errors
def sign(tenant: str) -> Response:
    """Sign a PKCS#10 CSR under the profile ``?profile=NAME``: 200 with the certificate (JSON, PEM or
    DER by Accept), 202 with the request id under manual approval."""
    from chalicelib.ca.csr import MAX_CSR_SIZE
    from chalicelib.service import csr

    request = bp.current_request
    validate_tenant_id(tenant)
    principal = auth.require(request, tenant)
    profile = _query({"profile"}).get("profile")
    if not profile:
        raise InvalidInput("name the profile: ?profile=NAME (GET /{tenant}/x509/profiles lists them)", field="profile")
    media.preferred(request, media.CERTIFICATE_TYPES)  # a 406 before anything is issued
    body = media.raw_body(request, MAX_CSR_SIZE)
    try:
        outcome = csr.sign_csr(tenant, body, profile, requester=principal.token_id)
    except PkiError as exc:
        observability.metric("CsrSigned", Outcome=exc.code)
        raise
    observability.metric("CsrSigned", Outcome=outcome.outcome)
    if outcome.status == 202 or outcome.certificate is None:
        return json_response(
            {
                "result": "PENDING",
                "id": outcome.request_id,
                "identity": outcome.identity,
                "profile": outcome.profile,
                "tenant": tenant,
            },
            202,
        )
    record = outcome.certificate
    meta = certificate_meta(record)
    meta["result"] = "OK"
    meta["outcome"] = outcome.outcome
    meta["profile"] = outcome.profile
    meta["certificate"] = der_to_pem(record.der).decode("ascii")
    return media.certificate_response(request, record.der, meta)


def _check_name(name: str) -> None:
    from chalicelib.ca.profiles import NAME_RE

    if not NAME_RE.fullmatch(name):
        raise InvalidInput("not a profile name", field="name")


def _page(items: list[dict[str, object]], next_token: str | None) -> Response:
    return json_response({"items": items, "count": len(items), "next": next_token})


@bp.route("/{tenant}/x509/profiles", methods=["GET"])
@json_errors
def list_profiles(tenant: str) -> Response:
    """Admin: the tenant's profiles (the built-in seacat first), paginated with ``limit``/``next``."""
    from chalicelib.service import profiles
    from chalicelib.service.approvals import page_size
    from chalicelib.service.tenants import get_tenant

    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    query: Mapping[str, str] = _query({"limit", "next"})
    page, next_token = profiles.list_profiles(tenant, page_size(query.get("limit")), query.get("next"))
    record = get_tenant(tenant)
    return _page([profiles.profile_json(record, p) for p in page], next_token)


@bp.route("/{tenant}/x509/profiles/{name}", methods=["GET"])
@json_errors
def get_profile(tenant: str, name: str) -> Response:
    """Admin: one profile."""
    from chalicelib.service import profiles

    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    _check_name(name)
    record, profile = profiles.get_profile(tenant, name)
    return json_response(profiles.profile_json(record, profile))


@bp.route("/{tenant}/x509/profiles/{name}", methods=["PUT"], content_types=["application/json"])
@json_errors
def put_profile(tenant: str, name: str) -> Response:
    """Admin: create (201) or replace (200) a profile; the same PUT again changes nothing."""
    from chalicelib.service import profiles
    from chalicelib.service.tenants import get_tenant

    request = bp.current_request
    validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request)
    profile, created = profiles.put_profile(tenant, name, body)
    return json_response(profiles.profile_json(get_tenant(tenant), profile), 201 if created else 200)


@bp.route("/{tenant}/x509/profiles/{name}", methods=["DELETE"])
@json_errors
def delete_profile(tenant: str, name: str) -> Response:
    """Admin: delete a profile (idempotent); its certificates stay valid."""
    from chalicelib.service import profiles

    validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    _check_name(name)
    deleted = profiles.delete_profile(tenant, name)
    return json_response({"tenant": tenant, "name": name, "deleted": deleted})
