"""Tenant and X.509 routes: tenant administration, CA certificates, certificate downloads."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api import auth, media
from chalicelib.api.errors import json_errors, json_response
from chalicelib.api.schemas import certificate_meta
from chalicelib.ca.pem import der_to_pem
from chalicelib.domain import CertificateRecord
from chalicelib.service import cas
from chalicelib.service import tenants as service

bp = Blueprint(__name__)


@bp.route("/tenants", methods=["GET"])
@json_errors
def list_tenants() -> Response:
    """Operator: every tenant's id, sorted."""
    from chalicelib.context import current

    auth.require(bp.current_request, operator=True)
    items = [{"tenant": tenant_id} for tenant_id in current().tenants.ids()]
    return json_response({"items": items, "count": len(items)})


@bp.route("/tenants/{tenant}", methods=["PUT"], content_types=["application/json"])
@json_errors
def put_tenant(tenant: str) -> Response:
    """Create a tenant (generating or importing its CA key) or merge its configuration."""
    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request, required=False)
    record, created = service.put_tenant(tenant, body)
    answer = service.tenant_json(record)
    if "approve" in body and record.config.approve is not None:
        from chalicelib.service import webhook

        # Every call is signed: the key is made with the first approve URL and shown here, once.
        secret = webhook.create_secret_if_missing(tenant)
        if secret is not None:
            answer["webhookSecret"] = secret
    return json_response(answer, 201 if created else 200)


@bp.route("/tenants/{tenant}", methods=["GET"])
@json_errors
def get_tenant(tenant: str) -> Response:
    """The tenant's configuration (never its key) and its CA certificates with their states."""
    service.validate_tenant_id(tenant)
    auth.require(bp.current_request, tenant)
    return json_response(cas.tenant_details(service.get_tenant(tenant)))


@bp.route("/{tenant}/webhook/secret", methods=["POST"])
@json_errors
def rotate_webhook_secret(tenant: str) -> Response:
    """Create or replace the key that signs the approve webhook's calls; it is in this answer only."""
    from chalicelib.service import webhook

    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    service.get_tenant(tenant)
    return json_response({"tenant": tenant, "webhookSecret": webhook.rotate_secret(tenant)}, 201)


def _ca_request(tenant: str) -> dict[str, Any]:
    """The JSON body of a request that makes a CA certificate, once the caller may and the answer's
    media type is one it accepts (a 406 before anything is created)."""
    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request)
    media.preferred(request, media.CERTIFICATE_TYPES)
    return body


def _ca_answer(tenant: str, record: CertificateRecord, status: int, **extra: str) -> Response:
    """A CA certificate just made or imported: PEM, DER or its JSON metadata, by Accept."""
    meta = certificate_meta(record)
    meta["result"] = "OK"
    meta["ca_cert"] = f"{tenant}:{record.cert_id}"
    meta["certificate"] = der_to_pem(record.der).decode("ascii")
    meta.update(extra)
    return media.certificate_response(bp.current_request, record.der, meta, status=status)


@bp.route("/{tenant}/x509/self-signed", methods=["PUT"], content_types=["application/json"])
@json_errors
def self_signed(tenant: str) -> Response:
    """Create a self-signed CA certificate over the tenant key from a JSON spec; it becomes active."""
    body = _ca_request(tenant)
    record = cas.create_self_signed(tenant, body)
    return _ca_answer(tenant, record, 201)


@bp.route("/{tenant}/x509/ca/rotate", methods=["POST"], content_types=["application/json"])
@json_errors
def rotate_ca(tenant: str) -> Response:
    """A new CA key (generated, or ``privateKey`` imported) and its self-signed certificate, made active."""
    body = _ca_request(tenant)
    record, fingerprint = cas.rotate(tenant, body)
    return _ca_answer(tenant, record, 201, keyFingerprint=fingerprint)


@bp.route("/{tenant}/x509/ca/import", methods=["PUT"], content_types=["application/json"])
@json_errors
def import_ca(tenant: str) -> Response:
    """An existing CA certificate over the tenant's key (``{"certificate": "<PEM>"}``) made its active
    CA byte for byte (201), or answered again when it is one of the tenant's already (200)."""
    body = _ca_request(tenant)
    record, added = cas.import_certificate(tenant, body)
    return _ca_answer(tenant, record, 201 if added else 200)


def _ca_change(tenant: str, change: cas.CaChange) -> Response:
    from datetime import UTC, datetime

    from chalicelib.context import current

    now = datetime.now(UTC)
    count = current().certificates.count_by_ca(tenant, change.ca.cert_id, now)
    return json_response(
        {
            "tenant": tenant,
            "ca": cas.ca_view(change.tenant, change.ca, now, count),
            "changed": [f"{tenant}:{cert_id}" for cert_id in change.changed],
            "certificatesRefused": change.certificates,
            "keyDeletionScheduled": change.key_deletion_scheduled,
        }
    )


@bp.route("/{tenant}/x509/ca/{ca_id}/retire", methods=["PUT"], content_types=["application/json"])
@json_errors
def retire_ca(tenant: str, ca_id: str) -> Response:
    """Take a CA certificate out of the bundle and the gateway's trust (409 while it covers certificates,
    unless ``{"force": true}``)."""
    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request, required=False)
    return _ca_change(tenant, cas.retire(tenant, ca_id, body))


@bp.route("/{tenant}/x509/ca/{ca_id}/revoke", methods=["PUT"], content_types=["application/json"])
@json_errors
def revoke_ca(tenant: str, ca_id: str) -> Response:
    """A compromised CA key: its CA certificates out of the bundle and trust, everything they issued refused."""
    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request, required=False)
    return _ca_change(tenant, cas.revoke(tenant, ca_id, body))


@bp.route("/{tenant}/x509/ca", methods=["GET"])
@json_errors
def ca_bundle(tenant: str) -> Response:
    """Public: every CA certificate of the tenant as a PEM bundle (NGINX ssl_client_certificate)."""
    service.validate_tenant_id(tenant)
    body = cas.ca_bundle(tenant)
    return Response(
        body=body,
        status_code=200,
        headers={
            "Content-Type": media.PEM,
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


@bp.route("/{tenant}/x509/cert/{cert_id}", methods=["GET"])
@json_errors
def get_certificate(tenant: str, cert_id: str) -> Response:
    """A certificate's metadata (JSON), or the certificate as PEM or DER by the Accept header."""
    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    record = cas.get_certificate(tenant, cert_id)
    return media.certificate_response(request, record.der, certificate_meta(record))


@bp.route("/{tenant}/x509/cert/{cert_id}/revoke", methods=["PUT"])
@json_errors
def revoke_certificate(tenant: str, cert_id: str) -> Response:
    """Admin: revoke a certificate (JSON ``{"reason": "<RFC 5280 reason>"}``); idempotent."""
    from chalicelib.errors import InvalidInput
    from chalicelib.service import revocation

    request = bp.current_request
    service.validate_tenant_id(tenant)
    auth.require(request, tenant)
    body = media.json_object(request, required=False)
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    record = revocation.revoke_certificate(tenant, cert_id, body.get("reason"))
    return json_response(certificate_meta(record))


@bp.route("/{tenant}/x509/crl", methods=["GET"])
@json_errors
def crl(tenant: str) -> Response:
    """Public: the tenant's DER CRL under its active CA's name."""
    from chalicelib.service import revocation

    service.validate_tenant_id(tenant)
    return _crl_response(revocation.crl_der(tenant))


@bp.route("/{tenant}/x509/crl/{ca_id}", methods=["GET"])
@json_errors
def ca_crl(tenant: str, ca_id: str) -> Response:
    """Public: the DER CRL under one CA certificate's name (what issued certificates point to)."""
    from chalicelib.service import revocation

    service.validate_tenant_id(tenant)
    return _crl_response(revocation.crl_der(tenant, ca_id))


def _crl_response(der: bytes) -> Response:
    return Response(
        body=der, status_code=200, headers={"Content-Type": media.CRL, "Cache-Control": "public, max-age=60"}
    )
