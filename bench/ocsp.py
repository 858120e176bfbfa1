"""The OCSP responder's rate beside its raw limit: GET /{tenant}/ocsp/{request} through the app's
handler on the in-memory store (as Lambda invokes it), against building and signing the same
response with cryptography alone (chalicelib/ca/ocsp.py's build_response with a key in hand).

- ``ocsp_raw``: build + ECDSA P-256 sign of a BasicOCSPResponse (the floor: every answer is signed);
- ``ocsp_get_warm``: the tenant kept in the container (SEACAT_TENANT_CACHE_SECONDS=5, Lambda's), the
  responder certificate and the issuer hashes kept; the status read from the store at every request;
- ``ocsp_get_tenant_uncached``: SEACAT_TENANT_CACHE_SECONDS=0 (make run's): the tenant read too.

The status itself is never cached at the origin (a revocation changes the answer at once), so there is
no "status cached" run: a response cached by a CDN (GET, max-age) costs the origin nothing.
"""

from __future__ import annotations

import base64
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp

from bench.common import Rate, api_event, body_of, cycle, measure, measure_paired, reset_container, set_env

POOL = 64
GET = "/{tenant}/ocsp/{request}"


def run(count: int, seconds: float, runs: int = 3) -> dict[str, Rate]:
    import os

    from bench import inproc
    from chalicelib import context
    from chalicelib.ca import ocsp
    from chalicelib.service import tokens

    before = os.environ.get("SEACAT_TENANT_CACHE_SECONDS")
    context.use_memory()
    reset_container()
    try:
        tokens.install_operator_token(inproc.TOKEN)
        inproc.create_tenant()
        bundle = inproc.invoke(
            api_event("GET", "/{tenant}/x509/ca", {"tenant": inproc.TENANT}, {"Accept": "application/x-pem-file"})
        )
        issuer = x509.load_pem_x509_certificates(body_of(bundle))[-1]
        events = []
        requests = []
        for _ in range(POOL):
            cert = x509.load_der_x509_certificate(inproc.enroll_ok(inproc.cr_of(inproc.new_key())))
            der = (
                x509_ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer, hashes.SHA1())
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            requests.append(ocsp.parse_request(der))
            segment = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
            events.append(api_event("GET", GET, {"tenant": inproc.TENANT, "request": segment}))

        answers: list[dict[str, Any]] = []

        def get(event: dict[str, Any]) -> None:
            answers.append(inproc.invoke(event))

        def checked(_: object, done: int) -> None:
            """Each answer of a run a good, signed OCSPResponse (checked outside the timing)."""
            for answer in answers[-done:]:
                response = x509_ocsp.load_der_ocsp_response(body_of(answer))
                if response.response_status != x509_ocsp.OCSPResponseStatus.SUCCESSFUL:
                    raise RuntimeError(f"OCSP GET answered {response.response_status}")
                if response.certificate_status != x509_ocsp.OCSPCertStatus.GOOD:
                    raise RuntimeError(f"OCSP GET answered {response.certificate_status}")
            answers.clear()

        rates: dict[str, Rate] = {}
        signer_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        signer = ocsp.build_signer(
            issuer=_self_signed(ca_key), issuer_key=ca_key, key=signer_key, now=now, lifetime=timedelta(days=7)
        )
        good = ocsp.Answer(ocsp.Status.GOOD)

        def raw(request: ocsp.Request) -> None:
            ocsp.build_response(
                request,
                good,
                signer=signer,
                signer_key=signer_key,
                this_update=now,
                next_update=now + timedelta(seconds=60),
            )

        rates["ocsp_raw"] = measure(raw, cycle(requests), count=count, seconds=seconds, runs=runs)
        set_env(SEACAT_TENANT_CACHE_SECONDS="5")
        # Paired: each run interleaves blocks of GETs with blocks of raw build + sign (the same load on both).
        rates["ocsp_get_warm"] = measure_paired(
            get, cycle(events), raw, cycle(requests), count=count, seconds=seconds, runs=runs, after=checked
        )
        set_env(SEACAT_TENANT_CACHE_SECONDS="0")
        rates["ocsp_get_tenant_uncached"] = measure(
            get, cycle(events), count=count, seconds=seconds, runs=runs, after=checked
        )
        return rates
    finally:
        set_env(SEACAT_TENANT_CACHE_SECONDS=before)
        context.reset()
        reset_container()


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "bench CA")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
