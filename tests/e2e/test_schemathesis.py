"""schemathesis against `make run`'s stack: docs/openapi.yaml, as served at GET /openapi.json, is the
contract. For every operation, generated requests (valid and invalid by the schema) are sent with
the operator's token and without any: no answer may be a 5xx, and every answer must be documented
(status, content type, headers, JSON body).

Half of the cases are pointed at a tenant set up with a CA, an issued certificate and a pending
request, so the interesting paths answer 200s that the schema then checks; the other half keep the
generated path parameters. Bounded: a few examples per operation, no deadline, about a minute.

The stack is this module's own (schemathesis changes tenants and tokens at random). Approve
webhook URLs in generated bodies are replaced by a closed port on 127.0.0.1: nothing leaves the
machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.e2e.test_concurrency import http, identity_of

TOKEN = "sct_00000000000000e5_schemathesis-operator-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 12
CLOSED_PORT_URL = "http://127.0.0.1:9/approve"  # discard port: nothing listens, nothing leaves the machine


def _ocsp_requests() -> list[bytes]:
    """Well-formed OCSP requests (CertIDs of issuers and serials this stack does not know, with and
    without a nonce): schemathesis has no generator of its own for application/ocsp-request."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import OCSPNonce, ocsp

    found = []
    for serial, nonce in ((1, None), (2**127 + 5, b"0123456789abcdef")):
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(b"\x01" * 20, b"\x02" * 20, serial, hashes.SHA1())
        if nonce is not None:
            builder = builder.add_extension(OCSPNonce(nonce), critical=False)
        found.append(builder.build().public_bytes(serialization.Encoding.DER))
    return found


# Real requests and junk bytes alike: both must get an OCSPResponse (200), never a 5xx.
schemathesis.openapi.media_type(
    "application/ocsp-request", st.one_of(st.sampled_from(_ocsp_requests()), st.binary(max_size=512))
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    stack = start_stack(tmp_path_factory.mktemp("schemathesis"), token=TOKEN)
    try:
        admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        octet = {"Content-Type": "application/octet-stream"}
        known: dict[str, str] = {"tenant": "st"}
        # manual approval from the start (the stack caches tenant settings for a few seconds)
        assert http("PUT", f"{stack.url}/tenants/st", b'{"manualApproval": true}', admin)[0] == 201
        assert http("PUT", f"{stack.url}/st/x509/self-signed", REFERENCE_SPEC.encode(), admin)[0] == 201
        key = ec.generate_private_key(ec.SECP256R1())
        status, _, body = http("PUT", f"{stack.url}/st/seacat/enroll", build_cr(key, application="st"), octet)
        assert status == 202
        approved = json.loads(body)["id"]
        assert http("PUT", f"{stack.url}/st/seacat/cr/{approved}/approve", None, admin)[0] == 200
        status, _, der = http("PUT", f"{stack.url}/st/seacat/enroll", build_cr(key, application="st"), octet)
        assert status == 200
        known["identity"] = identity_of(key)
        known["cert_id"] = hashlib.sha384(der).hexdigest()
        status, _, body = http(
            "PUT",
            f"{stack.url}/st/seacat/enroll",
            build_cr(ec.generate_private_key(ec.SECP256R1()), application="st"),
            octet,
        )
        assert status == 202
        known["cr_id"] = json.loads(body)["id"]
        status, _, body = http("POST", f"{stack.url}/tokens", b'{"tenant": "st"}', admin)
        known["token_id"] = json.loads(body)["tokenId"]
        # a profile, and a CSR pending under it (the pending list then holds both kinds of request)
        profile = b'{"sans": {"dns": ["*.example.com"]}}'
        assert http("PUT", f"{stack.url}/st/x509/profiles/routers", profile, admin)[0] == 201
        known["name"] = "routers"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "r1")]))
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        pkcs10 = {"Authorization": admin["Authorization"], "Content-Type": "application/pkcs10"}
        assert http("POST", f"{stack.url}/st/x509/sign?profile=routers", csr, pkcs10)[0] == 202
        yield {"stack": stack, "known": known}
    finally:
        stop_stack(stack)


@pytest.fixture(scope="module")
def api_schema(api: dict[str, Any]) -> Any:
    stack: Stack = api["stack"]
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.json")


_turn = itertools.count()
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
OPERATIONS = sorted(
    (path, method)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in ("get", "put", "post", "delete")
)


def aim(case: Any, known: dict[str, str]) -> None:
    """Every other case: the set-up tenant's real ids; and never a webhook off this machine."""
    if case.path_parameters and next(_turn) % 2 == 0:
        for name, value in known.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    if isinstance(case.body, dict):
        for name in ("approve", "publicBaseUrl"):
            if isinstance(case.body.get(name), str):
                case.body[name] = CLOSED_PORT_URL
    if case.query and "tenant" in case.query and next(_turn) % 2 == 0:
        case.query["tenant"] = known["tenant"]


# make run's limit on a request's head (the request line and headers, embedded/server.py): a longer one
# is answered 431 by granian itself, as API Gateway refuses an over-long request. Generated cases
# longer than this (8 KB seen) are not sent.
REQUEST_HEAD_LIMIT = 16384


def request_line(case: Any, base_url: str) -> str:
    import requests

    kwargs = case.as_transport_kwargs(base_url=base_url)
    url = requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params")).prepare().url or ""
    target = url[len(base_url.rstrip("/")) :]
    return f"{kwargs['method'].upper()} {target} HTTP/1.1"


def test_an_overlong_request_head_is_431(api: dict[str, Any]) -> None:
    stack: Stack = api["stack"]
    target = "/acme/seacat/cr?state=" + "x" * REQUEST_HEAD_LIMIT
    status, _, _ = http("GET", stack.url + target, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 431
    status, _, _ = http("GET", stack.url + "/health", headers={"X-Padding": "x" * REQUEST_HEAD_LIMIT})
    assert status == 431
    assert http("GET", stack.url + "/health")[0] == 200  # the server serves on


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_contract(api: dict[str, Any], api_schema: Any, path: str, method: str) -> None:
    """Valid and invalid requests (by the schema), each with the operator's token and without one."""
    from hypothesis import given
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    stack: Stack = api["stack"]
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=cases)
    def run(case: Any) -> None:
        aim(case, api["known"])
        if case.method.upper() == "DELETE" and case.path_parameters.get("token_id") in ("00000000000000e5", "operator"):
            return  # revoking this run's own operator token would end the run, not test the service
        if len(request_line(case, stack.url)) > REQUEST_HEAD_LIMIT // 2:
            return  # near the HTTP server's 431, before the app: test_an_overlong_request_head_is_431
        for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
            case.call_and_validate(base_url=stack.url, headers=headers, checks=CHECKS, timeout=30)

    run()


def test_the_served_spec_is_the_file(api: dict[str, Any]) -> None:
    stack: Stack = api["stack"]
    status, headers, body = http("GET", f"{stack.url}/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
    assert json.loads(body) == spec


def test_oversized_bodies_over_http_are_413(api: dict[str, Any]) -> None:
    stack: Stack = api["stack"]
    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, headers, body = http(
        "PUT", f"{stack.url}/st/seacat/enroll", b"\x30" * (1024 * 1024), {"Content-Type": "application/octet-stream"}
    )
    assert status == 413 and headers["Content-Type"].startswith("text/plain") and body.strip()
    status, _, body = http("PUT", f"{stack.url}/st/x509/self-signed", b" " * (65 * 1024), admin)
    assert status == 413 and json.loads(body)["error"] == "PayloadTooLarge"
