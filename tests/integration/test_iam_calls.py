"""The service role's policy against the AWS calls the service makes: on every route, and in the upkeep job.

moto does not enforce resource-level IAM, so this is the offline check of least privilege in both
directions. A scenario drives every route of ``app.routes`` (and the hourly upkeep) on the test stage's
stack, botocore records every API call (boto3 and pynamodb go through ``BaseClient._make_api_call``),
each call becomes the IAM (action, resource) pairs AWS authorises for it, and then:

- a pair the deployed role does not allow fails, named: the policy is too tight;
- a grant of the policy (an action on a resource pattern) that no call used fails, named: the policy is
  too wide, or the scenario misses a route;
- a route of the app the scenario does not reach fails, named: add a step for it in ``scenario``.

After a merge that adds routes (OCSP, EST, ...), run ``pytest tests/integration/test_iam_calls.py``: it
says which route to drive and which permission to add or remove.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REFERENCE_SPEC
from tests.integration.test_infra import ACCOUNT, REGION, _listed, _role_policy

Call = tuple[str, str, dict[str, Any]]

# Granted for the Lambda runtime, which writes the function's log with the role; the code never calls them.
RUNTIME_ONLY = {"logs:CreateLogStream", "logs:PutLogEvents"}

TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{{}}-AbCdEf"  # Secrets Manager adds "-" + 6 characters


def required(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The IAM (action, resource) pairs AWS authorises for one API call."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            return [
                (f"dynamodb:{kinds[kind]}", TABLE.format(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", TABLE.format(i["Get"]["TableName"])) for i in params["TransactItems"]]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", TABLE.format(name)) for name in params["RequestItems"]]
        resource = TABLE.format(params.get("TableName", "*"))
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", resource)]
    if service == "secretsmanager":
        name = params.get("Name") or params.get("SecretId", "")
        resource = name if name.startswith("arn:") else SECRET.format(name)
        needed = [(f"secretsmanager:{operation}", resource)]
        if operation == "CreateSecret" and params.get("Tags"):
            needed.append(("secretsmanager:TagResource", resource))
        return needed
    # Anything else (KMS directly, STS, CloudWatch, ...) is not something the role grants: reported as is.
    return [(f"{service}:{operation}", "*")]


def grants(statements: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(statement id, action, resource pattern) for every unconditional Allow of the policy."""
    return [
        (s.get("Sid", "?"), action, resource)
        for s in statements
        if s["Effect"] == "Allow" and "Condition" not in s  # KMS through Secrets Manager: never called directly
        for action in _listed(s["Action"])
        for resource in _listed(s["Resource"])
    ]


def matches(grant: tuple[str, str, str], action: str, resource: str) -> bool:
    _, pattern_action, pattern_resource = grant
    return fnmatch.fnmatchcase(action.lower(), pattern_action.lower()) and fnmatch.fnmatchcase(
        resource, pattern_resource
    )


def compare(statements: list[dict[str, Any]], needed: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(denied, unused): the calls the policy refuses, and the grants no call used, each as a readable line."""
    granted = grants(statements)
    denied = sorted(f"{a} on {r}" for a, r in needed if not any(matches(g, a, r) for g in granted))
    unused = sorted(
        f"{sid}: {action} on {resource}"
        for sid, action, resource in granted
        if action not in RUNTIME_ONLY and not any(matches((sid, action, resource), a, r) for a, r in needed)
    )
    return denied, unused


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """Every AWS API call made through botocore (boto3 and pynamodb) while the test runs."""
    import botocore.client

    calls: list[Call] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name, api_params))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    yield calls


class Driver:
    """The test client, noting which route of the app each request reached and what it cost in AWS calls."""

    def __init__(self, client: Any, calls: list[Call]) -> None:
        from chalice.local import RouteMatcher

        from app import app

        self.client = client
        self.calls = calls
        self.matcher = RouteMatcher(list(app.routes))
        self.reached: dict[tuple[str, str], set[tuple[str, str]]] = {}  # route -> the (action, resource) it needed

    def __call__(self, method: str, path: str, *codes: int, body: bytes | str = b"", **headers: str) -> Any:
        before = len(self.calls)
        response = getattr(self.client.http, method.lower())(path, headers=headers, body=body)
        assert response.status_code in (codes or (200,)), (method, path, response.status_code, response.body)
        route = self.matcher.match_route(path).route
        pairs = {pair for s, op, p in self.calls[before:] for pair in required(s, op, p)}
        self.reached.setdefault((method, route), set()).update(pairs)
        return response


def scenario(http: Driver, operator_token: str) -> None:
    """Every route, in an order that gives each one something to work on."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    from chalicelib import context
    from seacat_client.cr import build_cr
    from tests.reference_pki import reference_ca

    admin = {"Authorization": f"Bearer {operator_token}", "Content-Type": "application/json"}
    octet = {"Content-Type": "application/octet-stream"}

    def identity(der: bytes) -> str:
        name = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return str(name)

    http("GET", "/health")
    http("GET", "/openapi.json")
    http("PUT", "/tenants/acme", 201, body="{}", **admin)
    first = http("PUT", "/acme/x509/self-signed", 201, body=REFERENCE_SPEC, **admin).json_body["_id"]
    context.current().caches.clear()  # a cold container: the CA key comes from Secrets Manager again
    token = http("POST", "/tokens", 201, body=json.dumps({"tenant": "acme"}), **admin).json_body
    tenant = {"Authorization": f"Bearer {token['token']}", "Content-Type": "application/json"}
    http("GET", "/tenants/acme", **tenant)
    http("POST", "/acme/webhook/secret", 201, **tenant)
    http("POST", "/acme/webhook/secret", 201, **tenant)  # a rotation replaces the value (PutSecretValue)

    cert = http(
        "PUT", "/acme/seacat/enroll", body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="iam"), **octet
    )
    http(
        "POST",
        "/acme/seacat/enroll",
        body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="iam"),
        **octet,
    )
    pem = x509.load_der_x509_certificate(cert.body).public_bytes(serialization.Encoding.PEM)
    verified = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS"}
    http("PUT", "/acme/seacat/nginx_authenticate", body=pem, **verified)
    ocsp_steps(http, x509.load_der_x509_certificate(cert.body))
    credential = http("POST", "/acme/gateway/credential", 201, **tenant).json_body
    verified["X-SeaCat-Gateway-Credential"] = credential["credential"]
    http("POST", "/acme/seacat/nginx_authenticate", body=pem, **verified)
    http("DELETE", "/acme/gateway/credential", **tenant)
    who = identity(cert.body)
    http("GET", f"/acme/seacat/identity/{who}/certificates", **tenant)
    cert_id = hashlib.sha384(cert.body).hexdigest()
    http("GET", f"/acme/x509/cert/{cert_id}", **tenant)
    http("GET", f"/acme/seacat/get/{who}")
    http("GET", f"/acme/seacat/identity/{who}", **tenant)
    http("PUT", f"/acme/seacat/identity/{who}/block", **tenant)
    http("PUT", f"/acme/seacat/identity/{who}/unblock", **tenant)
    http("PUT", f"/acme/x509/cert/{cert_id}/revoke", body='{"reason": "superseded"}', **tenant)

    # manual approval: the pending index, an approval and a rejection
    http("PUT", "/tenants/acme", body=json.dumps({"manualApproval": True}), **tenant)
    pending = [
        http(
            "PUT",
            "/acme/seacat/enroll",
            202,
            body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="iam"),
            **octet,
        )
        for _ in range(2)
    ]
    approve, reject = (p.json_body["id"] for p in pending)
    http("GET", "/acme/seacat/cr?state=pending", **tenant)
    http("GET", f"/acme/seacat/cr/{approve}", **tenant)
    approved = http("PUT", f"/acme/seacat/cr/{approve}/approve", **tenant)
    http("PUT", f"/acme/seacat/cr/{reject}/reject", **tenant)
    del approved
    http("PUT", f"/acme/seacat/identity/{who}/revoke", body="{}", **tenant)
    http("GET", "/acme/x509/crl")  # the revoked index
    http("GET", "/acme/x509/ca")
    http("GET", "/audit?tenant=acme", **tenant)

    # the console, the caller's own token, the operator's list of tenants
    http("GET", "/console", 200, 308)
    http("GET", "/console/app.js")
    http("GET", "/whoami", **tenant)
    http("GET", "/tenants", **admin)

    # profiles, PKCS#10 and EST: signing, enrolment credentials, enrolment and re-enrolment at the gateway
    routers = {
        "keyTypes": ["P-256"],
        "lifetimeHours": 720,
        "extendedKeyUsage": ["clientAuth"],
        "sans": {"dns": ["*.routers.example.com"]},
        "approval": "auto",
    }
    http("PUT", "/acme/x509/profiles/routers", 200, 201, body=json.dumps(routers), **tenant)
    http("PUT", "/acme/x509/profiles/spare", 200, 201, body=json.dumps(routers), **tenant)
    http("PUT", "/tenants/acme", body=json.dumps({"estProfile": "routers"}), **tenant)
    http("GET", "/acme/x509/profiles", **tenant)
    http("GET", "/acme/x509/profiles/routers", **tenant)
    http("DELETE", "/acme/x509/profiles/spare", 200, 204, **tenant)

    def csr(cn: str) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        built = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        return built.public_bytes(serialization.Encoding.DER)

    pkcs10 = {"Authorization": tenant["Authorization"], "Content-Type": "application/pkcs10"}
    http("POST", "/acme/x509/sign?profile=routers", body=csr("s1.routers.example.com"), **pkcs10)
    made = http(
        "POST",
        "/acme/est/credentials",
        201,
        body=json.dumps({"profile": "routers", "uses": 4, "expiresIn": "1h"}),
        **tenant,
    ).json_body
    http("GET", "/acme/est/credentials", **tenant)
    http("GET", f"/acme/est/credentials/{made['username']}", **tenant)
    basic = base64.b64encode(f"{made['username']}:{made['password']}".encode()).decode()
    est = {"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"}
    for label in ("", "/routers"):
        http("GET", f"/.well-known/est/acme{label}/cacerts")
        http("GET", f"/.well-known/est/acme{label}/csrattrs", 200, 204)
    devices = (("", "e1.routers.example.com"), ("/routers", "e2.routers.example.com"))
    enrolled = [
        http("POST", f"/.well-known/est/acme{label}/simpleenroll", body=base64.b64encode(csr(cn)), **est)
        for label, cn in devices
    ]
    gateway = http("POST", "/acme/gateway/credential", 201, **tenant).json_body["credential"]
    for (label, cn), answer in zip(devices, enrolled, strict=True):
        (current,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(answer.body))
        forwarded = {
            "Content-Type": "application/pkcs10",
            "X-SSL-Client-Cert": urllib.parse.quote(current.public_bytes(serialization.Encoding.PEM).decode()),
            "X-SSL-Client-Verify": "SUCCESS",
            "X-SeaCat-Gateway-Credential": gateway,
        }
        http("POST", f"/.well-known/est/acme{label}/simplereenroll", body=base64.b64encode(csr(cn)), **forwarded)
    http("DELETE", "/acme/gateway/credential", **tenant)
    http("PUT", f"/acme/est/credentials/{made['username']}/revoke", **tenant)

    # the CA lifecycle: two rotations (keys of their own), retiring the first CA (its first key's secret
    # scheduled for deletion) and revoking the second (a rotated key's secret scheduled for deletion)
    second = http("POST", "/acme/x509/ca/rotate", 201, body=REFERENCE_SPEC, **tenant).json_body["_id"]
    http("POST", "/acme/x509/ca/rotate", 201, body=REFERENCE_SPEC, **tenant)
    http("GET", "/tenants/acme", **tenant)  # the counts by CA (ca-index)
    http("PUT", f"/acme/x509/ca/{first}/retire", body='{"force": true}', **tenant)
    http("GET", f"/acme/x509/crl/{first}")
    http("PUT", f"/acme/x509/ca/{second}/revoke", body='{"reason": "superseded"}', **tenant)
    # a CA certificate made elsewhere over a key the tenant was given (the reference's, say), imported
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_key_pem = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    given = json.dumps({**json.loads(REFERENCE_SPEC), "privateKey": ca_key_pem})
    http("POST", "/acme/x509/ca/rotate", 201, body=given, **tenant)
    importable = reference_ca(ca_key, cn="Imported Root CA").public_bytes(serialization.Encoding.PEM).decode()
    http("PUT", "/acme/x509/ca/import", 200, 201, body=json.dumps({"certificate": importable}), **tenant)
    http("GET", "/tokens?tenant=acme", **admin)
    http("DELETE", f"/tokens/{token['tokenId']}", **admin)


def ocsp_steps(http: Driver, cert: Any) -> None:
    """OCSP by POST and GET: the first answer issues the CA certificate's responder (CreateSecret); one
    issued short-lived is re-issued by the next request (PutSecretValue), as when its 7 days run out."""
    import base64
    import urllib.parse
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from chalicelib import context
    from chalicelib.service import ocsp as responder

    issuer = x509.load_pem_x509_certificates(http("GET", "/acme/x509/ca").body)[-1]
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    body = der.public_bytes(serialization.Encoding.DER)
    lifetime = responder.SIGNER_LIFETIME
    responder.SIGNER_LIFETIME = timedelta(days=1)  # within RENEW_BEFORE: the next request re-issues
    try:
        http("POST", "/acme/ocsp", body=body, **{"Content-Type": "application/ocsp-request"})
    finally:
        responder.SIGNER_LIFETIME = lifetime
    context.current().caches.clear()  # another container: the responder read from Secrets Manager
    http("GET", "/acme/ocsp/" + urllib.parse.quote(base64.b64encode(body).decode(), safe=""))


def upkeep() -> None:
    """The hourly job, as its Lambda function runs it (every tenant of the table)."""
    from chalicelib.jobs import upkeep
    from chalicelib.store import tenants

    report = upkeep.run(tenants.ids())
    assert report.tenants == 1 and not any(report.failures.values()), report


def test_the_role_allows_exactly_the_calls_of_every_route_and_the_upkeep(
    client: Any, operator_token: str, recorded_calls: list[Call]
) -> None:
    from app import app

    http = Driver(client, recorded_calls)
    scenario(http, operator_token)
    before = len(recorded_calls)
    upkeep()
    http.reached[("JOB", "upkeep")] = {pair for s, op, p in recorded_calls[before:] for pair in required(s, op, p)}

    every = {(m.upper(), path) for path, methods in app.routes.items() for m in methods}
    missed = sorted(every - set(http.reached))
    assert not missed, f"routes the IAM scenario does not reach (add a step to scenario()): {missed}"

    needed = {pair for service, op, params in recorded_calls for pair in required(service, op, params)}
    denied, unused = compare(_role_policy(), needed)
    by = {
        f"{a} on {r}": sorted(" ".join(route) for route, pairs in http.reached.items() if (a, r) in pairs)
        for a, r in needed
    }
    assert not denied, "the service role does not allow (add to ServicePolicy in infra/resources.yaml):\n" + "\n".join(
        f"{line}   (needed by {', '.join(by[line])})" for line in denied
    )
    assert not unused, "ServicePolicy grants what no route or job uses (remove it, or drive it here):\n" + "\n".join(
        unused
    )
    actions = {action for action, _ in needed}
    assert not any(a.startswith("kms:") for a in actions), "the service must reach KMS only through Secrets Manager"


def test_compare_names_what_is_missing_and_what_is_extra() -> None:
    """The comparison above is only as good as its matching: a missing and an extra grant are both named."""
    table = TABLE.format("seacat-test-tokens")
    statements = [
        {"Sid": "Tokens", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": table},
        {"Sid": "Logs", "Effect": "Allow", "Action": sorted(RUNTIME_ONLY), "Resource": "arn:aws:logs:*"},
        {"Sid": "Kms", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"a": {"b": "c"}}},
    ]
    needed = {("dynamodb:GetItem", table), ("dynamodb:PutItem", table), ("dynamodb:GetItem", table + "x")}
    assert compare(statements, needed) == (
        [f"dynamodb:GetItem on {table}x", f"dynamodb:PutItem on {table}"],
        [f"Tokens: dynamodb:Query on {table}"],
    )
    # a transaction is authorised item by item; a secret by its ARN with the random suffix
    assert required(
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "t1"}}, {"ConditionCheck": {"TableName": "t2"}}]},
    ) == [("dynamodb:PutItem", TABLE.format("t1")), ("dynamodb:ConditionCheckItem", TABLE.format("t2"))]
    assert required("secretsmanager", "CreateSecret", {"Name": "seacat/test/acme/ca-key", "Tags": [{}]}) == [
        ("secretsmanager:CreateSecret", SECRET.format("seacat/test/acme/ca-key")),
        ("secretsmanager:TagResource", SECRET.format("seacat/test/acme/ca-key")),
    ]
    assert required("kms", "Decrypt", {}) == [("kms:Decrypt", "*")]
