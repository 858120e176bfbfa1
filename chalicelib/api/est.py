"""EST (RFC 7030) routes: ``/.well-known/est/{tenant}/<operation>`` for the tenant's default EST
profile (its configuration's ``estProfile``), ``/.well-known/est/{tenant}/{profile}/<operation>`` for
another. RFC 7030 has one optional label segment; here the tenant is the label, and a profile the
segment after it (the NGINX gateway, which serves one tenant, maps the RFC's single label, and
strongSwan 5.9's path prefix, to it: docs/gateway.md).

Wire format in chalicelib/est/wire.py, the use cases in chalicelib/service/est.py; errors are plain
text (chalicelib/api/errors.py, ``est_errors``). The enrolment credentials' admin routes
(``/{tenant}/est/credentials``) are JSON, in chalicelib/api/est_credentials.py.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import observability
from chalicelib.api import media
from chalicelib.api.errors import NO_STORE, est_errors
from chalicelib.errors import PkiError

bp = Blueprint(__name__)

_PREFIX = "/.well-known/est/{tenant}"
# EST clients send application/pkcs10; some send base64 as text or octets. The body decides.
_ANY = ["*/*"]


def _certs_only(body: bytes, status: int = 200) -> Response:
    from chalicelib.est import wire

    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": wire.CERTS_ONLY, "Content-Transfer-Encoding": "base64", **NO_STORE},
    )


def _cacerts(tenant: str, profile: str | None) -> Response:
    from chalicelib.est import wire
    from chalicelib.service import est

    body = wire.certs_only(est.ca_certificates(tenant, profile))
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": wire.CERTS_ONLY, "Content-Transfer-Encoding": "base64", "Cache-Control": "no-cache"},
    )


def _csrattrs(tenant: str, profile: str | None) -> Response:
    from chalicelib.est import wire
    from chalicelib.service import est

    oids, attributes = est.csr_attributes(tenant, profile)
    return Response(
        body=wire.csr_attrs(oids, attributes),
        status_code=200,
        headers={"Content-Type": wire.CSRATTRS, "Content-Transfer-Encoding": "base64", **NO_STORE},
    )


def _issued(answer: object) -> Response:
    from chalicelib.est import wire
    from chalicelib.service.est import Answer

    assert isinstance(answer, Answer)
    if answer.status == 202 or answer.certificate is None:
        return Response(
            body=f"pending manual approval: request {answer.request_id}\n".encode(),
            status_code=202,
            headers={"Content-Type": "text/plain; charset=utf-8", "Retry-After": str(answer.retry_after), **NO_STORE},
        )
    return _certs_only(wire.certs_only([answer.certificate]))


def _enroll(tenant: str, profile: str | None) -> Response:
    from chalicelib.est import wire
    from chalicelib.service import est

    request = bp.current_request
    csr = wire.parse_request(media.raw_body(request, wire.MAX_REQUEST))
    try:
        answer = est.enroll(tenant, profile, csr, request.headers.get("authorization"))
    except PkiError as exc:
        observability.metric("EstEnrolments", Outcome=exc.code)
        raise
    observability.metric("EstEnrolments", Outcome="pending" if answer.status == 202 else "issued")
    return _issued(answer)


def _reenroll(tenant: str, profile: str | None) -> Response:
    from chalicelib.est import wire
    from chalicelib.service import est

    request = bp.current_request
    csr = wire.parse_request(media.raw_body(request, wire.MAX_REQUEST))
    cert = est.client_certificate(tenant, request.headers, request.context)
    try:
        answer = est.reenroll(tenant, profile, csr, cert)
    except PkiError as exc:
        observability.metric("EstReenrolments", Outcome=exc.code)
        raise
    observability.metric("EstReenrolments", Outcome="pending" if answer.status == 202 else "issued")
    return _issued(answer)


@bp.route(_PREFIX + "/cacerts", methods=["GET"])
@est_errors
def cacerts(tenant: str) -> Response:
    """Public: the tenant's CA certificates in trust, base64 PKCS#7 certs-only."""
    return _cacerts(tenant, None)


@bp.route(_PREFIX + "/{profile}/cacerts", methods=["GET"])
@est_errors
def cacerts_of_profile(tenant: str, profile: str) -> Response:
    """Public: as /cacerts (the same CA issues under every profile; the profile must exist)."""
    return _cacerts(tenant, profile)


@bp.route(_PREFIX + "/csrattrs", methods=["GET"])
@est_errors
def csrattrs(tenant: str) -> Response:
    """Public: what the default EST profile needs of a CSR, base64 DER CsrAttrs."""
    return _csrattrs(tenant, None)


@bp.route(_PREFIX + "/{profile}/csrattrs", methods=["GET"])
@est_errors
def csrattrs_of_profile(tenant: str, profile: str) -> Response:
    """Public: what the profile needs of a CSR."""
    return _csrattrs(tenant, profile)


@bp.route(_PREFIX + "/simpleenroll", methods=["POST"], content_types=_ANY)
@est_errors
def simpleenroll(tenant: str) -> Response:
    """Enrolment credential (HTTP Basic): base64 PKCS#10 in, the certificate out (or 202)."""
    return _enroll(tenant, None)


@bp.route(_PREFIX + "/{profile}/simpleenroll", methods=["POST"], content_types=_ANY)
@est_errors
def simpleenroll_of_profile(tenant: str, profile: str) -> Response:
    """As /simpleenroll, under the profile named."""
    return _enroll(tenant, profile)


@bp.route(_PREFIX + "/simplereenroll", methods=["POST"], content_types=_ANY)
@est_errors
def simplereenroll(tenant: str) -> Response:
    """The current certificate (TLS client certificate at a trusted terminator): a new certificate."""
    return _reenroll(tenant, None)


@bp.route(_PREFIX + "/{profile}/simplereenroll", methods=["POST"], content_types=_ANY)
@est_errors
def simplereenroll_of_profile(tenant: str, profile: str) -> Response:
    """As /simplereenroll, under the profile named."""
    return _reenroll(tenant, profile)
