"""SeaCat routes: the clients' two calls (public) and the tenant's enrolment administration."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from chalice.app import Blueprint, Response

from chalicelib import observability
from chalicelib.api import auth, media
from chalicelib.api.errors import NO_STORE, json_errors, json_response, text_errors
from chalicelib.api.schemas import certificate_meta, identity_json, request_meta
from chalicelib.errors import InvalidInput, PkiError

log = logging.getLogger("seacat.api")

bp = Blueprint(__name__)

# Binary in: SeaCat clients send application/octet-stream; accept what proxies may rewrite it to.
_CR_TYPES = ["application/octet-stream", "application/x-seacat-cr", "application/pkcs10"]


@bp.route("/{tenant}/seacat/enroll", methods=["PUT", "POST"], content_types=_CR_TYPES)
@text_errors
def enroll(tenant: str) -> Response:
    """Public: enrol with a SeaCat CR; 200 with the DER certificate, in this same request."""
    from chalicelib.seacat.codec import MAX_CR_SIZE
    from chalicelib.service import enrollment

    body = media.raw_body(bp.current_request, MAX_CR_SIZE)
    try:
        result = enrollment.enroll(tenant, body)
    except PkiError as exc:
        observability.metric("Enrolments", Outcome=exc.code)
        raise
    observability.metric("Enrolments", Outcome=result.outcome)
    if result.status == 202:
        return json_response(
            {"result": "PENDING", "id": result.cr_id, "identity": result.identity, "tenant": tenant}, 202
        )
    assert result.der is not None
    return Response(
        body=result.der,
        status_code=200,
        headers={"Content-Type": media.DER, "X-SeaCat-Identity": result.identity, **NO_STORE},
    )


@bp.route("/{tenant}/seacat/get/{identity}", methods=["GET"])
@text_errors
def get_identity_certificate(tenant: str, identity: str) -> Response:
    """Public: DER of the identity's newest valid certificate (Android's PeerProvider)."""
    from chalicelib.service import enrollment

    der = enrollment.get_identity_certificate(tenant, identity)
    return Response(body=der, status_code=200, headers={"Content-Type": media.DER, "Cache-Control": "no-cache"})


def _page(items: list[dict[str, object]], next_token: str | None) -> Response:
    return json_response({"items": items, "count": len(items), "next": next_token})


@bp.route("/{tenant}/seacat/cr", methods=["GET"])
@json_errors
def list_requests(tenant: str) -> Response:
    """Admin: certificate requests by state (``state=pending``), paginated with ``limit``/``next``."""
    from chalicelib.service import approvals

    request = bp.current_request
    auth.require(request, tenant)
    params: Mapping[str, str] = request.query_params or {}
    records, next_token = approvals.list_requests(
        tenant, params.get("state", "pending"), approvals.page_size(params.get("limit")), params.get("next")
    )
    return _page([request_meta(r) for r in records], next_token)


@bp.route("/{tenant}/seacat/cr/{cr_id}", methods=["GET"])
@json_errors
def get_request(tenant: str, cr_id: str) -> Response:
    """Admin: one certificate request ("cryptomaterial meta")."""
    from chalicelib.service import approvals

    auth.require(bp.current_request, tenant)
    record, certificate = approvals.request_with_certificate(tenant, cr_id)
    return json_response(request_meta(record, certificate))


def _decide(tenant: str, cr_id: str, approve: bool) -> Response:
    from chalicelib.service import approvals

    principal = auth.require(bp.current_request, tenant)
    record, identity = approvals.decide(tenant, cr_id, approve, principal.token_id)
    return json_response({"request": request_meta(record), "identity": identity_json(identity)})


@bp.route("/{tenant}/seacat/cr/{cr_id}/approve", methods=["PUT"])
@json_errors
def approve_request(tenant: str, cr_id: str) -> Response:
    """Admin: approve a pending CR; the client's next enrolment with that key gets its certificate."""
    return _decide(tenant, cr_id, True)


@bp.route("/{tenant}/seacat/cr/{cr_id}/reject", methods=["PUT"])
@json_errors
def reject_request(tenant: str, cr_id: str) -> Response:
    """Admin: reject a pending CR."""
    return _decide(tenant, cr_id, False)


@bp.route("/{tenant}/seacat/identity/{identity}", methods=["GET"])
@json_errors
def get_identity(tenant: str, identity: str) -> Response:
    """Admin: an identity's status."""
    from chalicelib.service import approvals

    auth.require(bp.current_request, tenant)
    return json_response(identity_json(approvals.identity_status(tenant, identity)))


@bp.route("/{tenant}/seacat/identity/{identity}/certificates", methods=["GET"])
@json_errors
def list_identity_certificates(tenant: str, identity: str) -> Response:
    """Admin: an identity's certificates, newest first, paginated."""
    from chalicelib.service import approvals

    request = bp.current_request
    auth.require(request, tenant)
    params: Mapping[str, str] = request.query_params or {}
    records, next_token = approvals.list_identity_certificates(
        tenant, identity, approvals.page_size(params.get("limit")), params.get("next")
    )
    return _page([certificate_meta(r) for r in records], next_token)


@bp.route("/{tenant}/seacat/identity/{identity}/block", methods=["PUT"])
@json_errors
def block_identity(tenant: str, identity: str) -> Response:
    """Admin: block an identity (403 on enrolment and renewal)."""
    from chalicelib.service import approvals

    auth.require(bp.current_request, tenant)
    return json_response(identity_json(approvals.set_blocked(tenant, identity, True)))


@bp.route("/{tenant}/seacat/identity/{identity}/unblock", methods=["PUT"])
@json_errors
def unblock_identity(tenant: str, identity: str) -> Response:
    """Admin: unblock an identity."""
    from chalicelib.service import approvals

    auth.require(bp.current_request, tenant)
    return json_response(identity_json(approvals.set_blocked(tenant, identity, False)))


@bp.route("/{tenant}/seacat/identity/{identity}/revoke", methods=["PUT"])
@json_errors
def revoke_identity(tenant: str, identity: str) -> Response:
    """Admin: revoke an identity and all its certificates (optional JSON ``{"reason": ...}``)."""
    from chalicelib.service import revocation

    request = bp.current_request
    auth.require(request, tenant)
    body = media.json_object(request, required=False)
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    record, certificates = revocation.revoke_identity(tenant, identity, body.get("reason"))
    return json_response(
        {"identity": identity_json(record), "certificates": [certificate_meta(c) for c in certificates]}
    )


# NGINX forwards the original request's Content-Type on the auth subrequest: accept any.
@bp.route("/{tenant}/seacat/nginx_authenticate", methods=["PUT", "POST"], content_types=["*/*"])
def nginx_authenticate(tenant: str) -> Response:
    """Gateway: 200 with X-SeaCat-Identity, 401 or 403; never anything else (NGINX would 500)."""
    from chalicelib.service import gateway

    request = bp.current_request
    try:
        body = request.raw_body or b""
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        verdict = gateway.authenticate(
            tenant,
            data,
            request.headers.get("x-ssl-client-verify"),
            request.headers.get(gateway.GATEWAY_CREDENTIAL_HEADER),
        )
    except Exception as exc:  # fail closed, and still answer something NGINX understands
        log.error("nginx_authenticate failed closed: %s", type(exc).__name__)
        verdict = gateway.Verdict(403, None, "internal error")
    headers: dict[str, str | list[str]] = {"Content-Type": "text/plain; charset=utf-8"}
    if verdict.status == 200 and verdict.identity:
        headers["X-SeaCat-Identity"] = verdict.identity
    else:
        # Denials must not be cached by the gateway (the reference caches 200 only).
        headers["Cache-Control"] = "no-store"
        # The bounded reason code (never caller text), for the gateway's access log (auth_request_set):
        # whoever debugs a refusal sees why there, the refused client only NGINX's bare 401/403.
        headers["X-SeaCat-Reason"] = verdict.code
        log.info(
            "authentication denied", extra={"status": verdict.status, "reason": verdict.reason, "code": verdict.code}
        )
    observability.metric("Authentications", Outcome="allowed" if verdict.status == 200 else f"denied{verdict.status}")
    return Response(body=(verdict.reason + "\n").encode("utf-8"), status_code=verdict.status, headers=headers)
