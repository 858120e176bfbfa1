"""Fault injection: AWS errors at every call of a request, lost answers, races, a misbehaving webhook.

Faults are injected at botocore's ``BaseClient._make_api_call``, below the service and pynamodb (so
their error translation runs as in production) and above the emulator: an error before the call
(it never reaches DynamoDB or Secrets Manager), or after it (the write happened, the answer was
lost: a read timeout). Races are interleaved deterministically: a hook runs the competing request
when the first one is about to write.

After each fault the answer must be clear (a 4xx, or a 503 with Retry-After where retrying helps)
and the state whole, checked in the tables themselves: a certificate is returned only if it is
stored, and a stored one the client was not told about is what its retry gets; every issued
certificate has its serial claim and no serial is used twice; an identity names a stored
certificate; a request's recorded state matches what the client was told; a tenant lists exactly
the CA certificates that exist; an approval is applied once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, moto_client

OPERATOR = "sct_00000000000000f2_faults-operator-token-0123456789"
OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str = OPERATOR) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def identity_of(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


# -- the fault injector -----------------------------------------------------------------------------


def aws_error(code: str, operation: str, **extra: Any) -> ClientError:
    status = 500 if code in ("InternalServerError", "InternalServiceError", "ServiceUnavailable") else 400
    return ClientError(
        {
            "Error": {"Code": code, "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
            **extra,
        },
        operation,
    )


def lost_answer(operation: str) -> Exception:
    """The call was carried out and its answer lost: AWS documents that after an InternalServerError
    "the request may or may not have succeeded"."""
    return aws_error("InternalServerError", operation)


def timed_out(operation: str) -> Exception:
    return ReadTimeoutError(endpoint_url=f"https://aws.invalid/{operation}")


@dataclass
class Rule:
    service: str | None  # "dynamodb", "secretsmanager", "kms"; None: any
    operation: str | None  # e.g. "TransactWriteItems"; None: any
    make: Callable[[str], Exception] | None  # the error; None: only run ``before``
    after: bool = False  # let the call happen, then lose its answer
    times: int = 1
    at: int | None = None  # only the n-th AWS call (0-based) while armed
    before: Callable[[], None] | None = None  # e.g. run a competing request first
    when: Callable[[dict[str, Any]], bool] | None = None  # only calls whose parameters match
    hits: int = 0

    def matches(self, service: str, operation: str, index: int, params: dict[str, Any]) -> bool:
        return (
            self.hits < self.times
            and (self.service is None or self.service == service)
            and (self.operation is None or self.operation == operation)
            and (self.at is None or self.at == index)
            and (self.when is None or self.when(params))
        )


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    armed_: bool = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        faults = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if not faults.armed_:
                return original(client, operation_name, api_params)
            service = client.meta.service_model.service_name
            index = len(faults.calls)
            faults.calls.append((service, operation_name))
            rule = next((r for r in faults.rules if r.matches(service, operation_name, index, api_params)), None)
            if rule is None:
                return original(client, operation_name, api_params)
            rule.hits += 1
            if rule.before is not None:
                faults.armed_ = False  # the competing request runs without faults
                try:
                    rule.before()
                finally:
                    faults.armed_ = True
            if rule.make is None:
                return original(client, operation_name, api_params)
            if not rule.after:
                raise rule.make(operation_name)
            original(client, operation_name, api_params)
            raise rule.make(operation_name)

        monkeypatch.setattr(BaseClient, "_make_api_call", _make_api_call)

    def add(self, *args: Any, **kwargs: Any) -> Rule:
        rule = Rule(*args, **kwargs)
        self.rules.append(rule)
        return rule

    @contextlib.contextmanager
    def armed(self) -> Iterator[Faults]:
        self.calls.clear()
        self.armed_ = True
        try:
            yield self
        finally:
            self.armed_ = False
            self.rules.clear()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    injector = Faults()
    injector.install(monkeypatch)
    return injector


# -- one moto environment for the module ------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with moto_client(OPERATOR, SEACAT_REVOCATION_CACHE_SECONDS="0") as test_client:
        yield test_client


_made: set[str] = set()


def tenant(client: Any, name: str, **config: Any) -> str:
    """A tenant with a CA (made once per module), configured as asked."""
    if name not in _made:
        assert client.http.put(f"/tenants/{name}", headers=auth(), body="{}").status_code == 201
        assert client.http.put(f"/{name}/x509/self-signed", headers=auth(), body=REFERENCE_SPEC).status_code == 201
        _made.add(name)
    if config:
        r = client.http.put(f"/tenants/{name}", headers=auth(), body=json.dumps(config))
        assert r.status_code == 200, r.body
    return name


def cold_start() -> None:
    """A new Lambda container: no CA key, no parsed CA, no cached tenant or revocation state."""
    from chalicelib import context

    context.current().caches.clear()


def enrol(client: Any, name: str, key: ec.EllipticCurvePrivateKey, application: str = "faults") -> Any:
    return client.http.put(f"/{name}/seacat/enroll", headers=OCTET, body=build_cr(key, application=application))


def authenticate(client: Any, name: str, der: bytes) -> int:
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    r = client.http.put(f"/{name}/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS"}, body=pem)
    return int(r.status_code)


def assert_retry_later(r: Any) -> None:
    assert r.status_code == 503, (r.status_code, r.body[:200])
    assert int(r.headers["Retry-After"]) > 0
    assert r.body.strip()


# -- the tables, read directly ------------------------------------------------------------------------


def scan(table: str, tenant: str) -> list[dict[str, Any]]:
    """Every item of ``tenant`` in the table (filtered by DynamoDB: the module's moto holds every test's tenants,
    and moto takes ~1 ms an item to answer a scan)."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    ddb, deserializer = boto3.client("dynamodb"), TypeDeserializer()
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": f"seacat-test-{table}",
        "ConsistentRead": True,
        "FilterExpression": "tenant_id = :tenant",
        "ExpressionAttributeValues": {":tenant": {"S": tenant}},
    }
    for _ in range(1000):
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            plain = {k: deserializer.deserialize(v) for k, v in item.items()}
            items.append({k: (v.value if hasattr(v, "value") else v) for k, v in plain.items()})
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


@dataclass
class State:
    issued: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    cas: list[dict[str, Any]]
    identities: dict[str, dict[str, Any]]
    requests: dict[str, dict[str, Any]]
    tenant: dict[str, Any]

    def certificates_of(self, identity: str) -> list[dict[str, Any]]:
        return [c for c in self.issued if c.get("identity") == identity]


def state_of(name: str) -> State:
    """The tenant's items, checked for wholeness on the way."""
    certs = scan("certificates", name)
    issued = [c for c in certs if c["kind"] == "seacat"]
    claims = [c for c in certs if c["kind"] == "serial"]
    cas = [c for c in certs if c["kind"] == "ca"]
    identities = {i["identity"]: i for i in scan("identities", name)}
    requests = {r["cr_id"]: r for r in scan("requests", name)}
    (tenant_item,) = scan("tenants", name)

    # every issued certificate has its serial claim, and no serial is used twice
    serials = [c["serial"] for c in issued]
    assert len(serials) == len(set(serials)), "a serial was used twice"
    claimed = {c["pk"].split("#serial#", 1)[1]: c["cert_id"] for c in claims}
    assert claimed == {c["serial"]: c["cert_id"] for c in issued}, "serial claims and certificates differ"
    by_id = {c["cert_id"]: c for c in issued}
    # an identity names a stored certificate, and counts exactly its stored certificates
    for identity, item in identities.items():
        mine = [c for c in issued if c.get("identity") == identity]
        assert int(item.get("certificates") or 0) == len(mine), identity
        if item.get("cert_id"):
            assert item["cert_id"] in by_id and by_id[item["cert_id"]]["der"] == item["cert_der"], identity
            newest = max(mine, key=lambda c: c["issued_at"])
            assert newest["cert_id"] == item["cert_id"], "the identity does not name its newest certificate"
        by_serial = {c["serial"]: c for c in issued}
        for revoked in item.get("revoked_serials") or ():
            assert by_serial[revoked].get("revoked_at") is not None, "revoked on the identity, not on the certificate"
    for cert in issued:
        assert cert["identity"] in identities, "a certificate without its identity"
    # an issued request names its stored certificate
    for request in requests.values():
        if request["state"] == "issued":
            assert request.get("cert_id") in by_id, request["cr_id"]
        assert (request.get("pending_key") is not None) == (request["state"] == "pending")
    # the tenant lists exactly the CA certificates that exist, and the active one is among them
    listed = [entry["cert_id"] for entry in tenant_item.get("cas") or []]
    assert sorted(listed) == sorted(c["cert_id"] for c in cas), "tenant CA list and CA certificates differ"
    assert len(listed) == len(set(listed))
    assert tenant_item.get("active_ca") in listed + ([None] if not listed else [])
    return State(issued, claims, cas, identities, requests, tenant_item)


# -- DynamoDB and Secrets Manager faults at every call of a request -----------------------------------

FAULT_KINDS: dict[str, tuple[Callable[[str], Exception], bool]] = {
    "ProvisionedThroughputExceeded": (lambda op: aws_error("ProvisionedThroughputExceededException", op), False),
    "Throttling": (lambda op: aws_error("ThrottlingException", op), False),
    "InternalServerError": (lambda op: aws_error("InternalServerError", op), False),
    "lost answer": (lost_answer, True),
}


def record_calls(faults: Faults, run: Callable[[], Any]) -> list[tuple[str, str]]:
    with faults.armed():
        run()
        return list(faults.calls)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_enrolment_with_a_fault_at_each_aws_call(client: Any, faults: Faults, kind: str) -> None:
    name = tenant(client, "sweep")
    make, after = FAULT_KINDS[kind]
    cold_start()
    calls = record_calls(faults, lambda: enrol(client, name, new_key()))
    assert ("secretsmanager", "GetSecretValue") in calls and ("dynamodb", "TransactWriteItems") in calls
    assert all(service != "kms" for service, _ in calls)  # KMS is reached only through Secrets Manager
    lost_but_stored = 0
    for index, (service, operation) in enumerate(calls):
        key = new_key()
        identity = identity_of(key)
        cold_start()
        with faults.armed():
            faults.add(service, operation, make, after=after, at=index)
            r = enrol(client, name, key)
        where = f"{kind} at call {index} ({service} {operation})"
        after_fault = state_of(name)
        stored = after_fault.certificates_of(identity)
        if r.status_code == 200:
            assert [c["der"] for c in stored] == [r.body], where
        else:
            assert_retry_later(r)
            assert len(stored) <= 1, where
            if not stored:
                assert identity not in after_fault.identities or not after_fault.identities[identity].get("cert_id"), (
                    where
                )
                assert all(
                    q["state"] != "issued" for q in after_fault.requests.values() if q["identity"] == identity
                ), where
            else:
                assert after, f"{where}: stored, though the write failed"
                lost_but_stored += 1
        retry = enrol(client, name, key)
        assert retry.status_code == 200, (where, retry.body)
        final = state_of(name).certificates_of(identity)
        assert [c["der"] for c in final] == [retry.body], f"{where}: not exactly the one certificate the retry got"
        if r.status_code == 200 or stored:
            assert retry.body == (r.body if r.status_code == 200 else stored[0]["der"]), where
    assert lost_but_stored == (1 if after else 0)  # the lost answer of the issuing transaction


@pytest.mark.parametrize(
    "service, operation",
    [("dynamodb", "GetItem"), ("dynamodb", "TransactWriteItems"), ("secretsmanager", "GetSecretValue")],
)
def test_an_aws_timeout_is_a_503(client: Any, faults: Faults, service: str, operation: str) -> None:
    name = tenant(client, "sweep")
    key = new_key()
    cold_start()
    with faults.armed():
        faults.add(service, operation, timed_out)
        r = enrol(client, name, key)
    assert_retry_later(r)
    assert state_of(name).certificates_of(identity_of(key)) == []


@pytest.mark.parametrize("kind", ["Throttling", "lost answer"])
def test_ca_creation_with_a_fault_at_each_aws_call(client: Any, faults: Faults, kind: str) -> None:
    name = tenant(client, f"ca-sweep-{kind.replace(' ', '-')}")
    make, after = FAULT_KINDS[kind]
    cold_start()

    def create() -> Any:
        return client.http.put(f"/{name}/x509/self-signed", headers=auth(), body=REFERENCE_SPEC)

    calls = record_calls(faults, create)
    lost_but_added = 0
    for index, (service, operation) in enumerate(calls):
        before = state_of(name)
        cold_start()
        with faults.armed():
            faults.add(service, operation, make, after=after, at=index)
            r = create()
        where = f"{kind} at call {index} ({service} {operation})"
        now = state_of(name)
        added = {c["cert_id"] for c in now.cas} - {c["cert_id"] for c in before.cas}
        if r.status_code == 201:
            assert added == {r.json_body["_id"]} and now.tenant["active_ca"] == r.json_body["_id"], where
        else:
            assert_retry_later(r)
            assert r.json_body["error"] == "Unavailable"
            if added:  # the transaction committed and its answer was lost: listed and active all the same
                assert after and operation == "TransactWriteItems" and now.tenant["active_ca"] in added, where
                lost_but_added += 1
    assert lost_but_added == (1 if after else 0)


@pytest.mark.parametrize("kind", ["Throttling", "lost answer"])
def test_tenant_creation_with_a_fault_at_each_aws_call(client: Any, faults: Faults, kind: str) -> None:
    import boto3

    from chalicelib.ca import keys

    make, after = FAULT_KINDS[kind]
    calls = record_calls(faults, lambda: client.http.put(f"/tenants/probe-{kind[:4]}", headers=auth(), body="{}"))
    assert ("secretsmanager", "CreateSecret") in calls
    for index, (service, operation) in enumerate(calls):
        name = f"t{index}-{kind.replace(' ', '-')}"
        with faults.armed():
            faults.add(service, operation, make, after=after, at=index)
            r = client.http.put(f"/tenants/{name}", headers=auth(), body="{}")
        where = f"{kind} at call {index} ({service} {operation})"
        if r.status_code != 201:
            assert_retry_later(r)
            items = scan("tenants", name)
            assert not items or (after and operation in ("PutItem", "TransactWriteItems")), where
        retry = client.http.put(f"/tenants/{name}", headers=auth(), body="{}")
        assert retry.status_code in (200, 201), (where, retry.body)
        # the tenant's fingerprint is the stored key's, whichever attempt stored it
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=f"seacat/test/{name}/ca-key")["SecretString"]
        stored = serialization.load_pem_private_key(secret.encode(), None)
        assert retry.json_body["keyFingerprint"] == keys.public_key_fingerprint(stored.public_key()), where  # type: ignore[arg-type]


# -- Secrets Manager (and KMS, through it) on the first signing after a cold start ---------------------

SM_ERRORS = [
    "ThrottlingException",
    "InternalServiceError",
    "DecryptionFailure",  # KMS could not decrypt the secret (key disabled, grant revoked)
    "KMSAccessDeniedException",
    "AccessDeniedException",
]


@pytest.mark.parametrize("code", SM_ERRORS)
def test_key_store_faults_on_the_first_signing_after_a_cold_start(client: Any, faults: Faults, code: str) -> None:
    name = tenant(client, "coldstart")
    key = new_key()
    before = state_of(name)
    for request in (
        lambda: enrol(client, name, key),
        lambda: client.http.put(f"/{name}/x509/self-signed", headers=auth(), body=REFERENCE_SPEC),
        lambda: client.http.get(f"/{name}/x509/crl"),
    ):
        cold_start()
        with faults.armed():
            rule = faults.add("secretsmanager", "GetSecretValue", lambda op: aws_error(code, op), times=10)
            r = request()
        assert rule.hits >= 1
        assert_retry_later(r)
        assert all(service != "kms" for service, _ in faults.calls)
    after = state_of(name)
    assert after.issued == before.issued and after.cas == before.cas
    assert identity_of(key) not in after.identities
    r = enrol(client, name, key)  # the key store is back
    assert r.status_code == 200
    assert [c["der"] for c in state_of(name).certificates_of(identity_of(key))] == [r.body]


@pytest.mark.parametrize(
    "code", ["EncryptionFailure", "KMSInvalidStateException", "LimitExceededException", "ThrottlingException"]
)
def test_key_store_faults_when_a_tenant_is_created(client: Any, faults: Faults, code: str) -> None:
    name = f"kms-{code[:10].lower()}"
    with faults.armed():
        faults.add("secretsmanager", "CreateSecret", lambda op: aws_error(code, op))
        r = client.http.put(f"/tenants/{name}", headers=auth(), body="{}")
    assert_retry_later(r)
    assert not scan("tenants", name)
    assert client.http.put(f"/tenants/{name}", headers=auth(), body="{}").status_code == 201


def test_a_corrupted_key_secret_is_a_server_fault(client: Any) -> None:
    import boto3

    name = tenant(client, "corrupt")
    boto3.client("secretsmanager").put_secret_value(SecretId=f"seacat/test/{name}/ca-key", SecretString="not a key")
    cold_start()
    r = enrol(client, name, new_key())
    assert r.status_code >= 500 and b"privateKey" not in r.body, (r.status_code, r.body)


# -- reads throttled: the gateway fails closed, admin routes say "retry" ---------------------------------


def test_throttled_reads_at_the_gateway_fail_closed(client: Any, faults: Faults) -> None:
    name = tenant(client, "gw")
    r = enrol(client, name, new_key())
    assert r.status_code == 200 and authenticate(client, name, r.body) == 200
    for code in ("ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"):
        for at in (0, 1):  # the tenant item, then the identity item
            cold_start()
            with faults.armed():
                faults.add("dynamodb", "GetItem", lambda op, c=code: aws_error(c, op), at=at)
                status = authenticate(client, name, r.body)
            assert status == 403, (code, at, status)
    assert authenticate(client, name, r.body) == 200


@pytest.mark.parametrize(
    "method, path, operation",
    [
        ("GET", "/tenants/gw", "GetItem"),
        ("GET", "/gw/seacat/cr?state=pending", "Query"),
        ("PUT", "/tenants/gw", "TransactWriteItems"),
        ("POST", "/tokens", "TransactWriteItems"),
        ("GET", "/gw/x509/crl", "Query"),
    ],
)
def test_throttled_admin_and_public_routes_answer_503_with_retry_after(
    client: Any, faults: Faults, method: str, path: str, operation: str
) -> None:
    tenant(client, "gw")
    body = {"PUT": json.dumps({"lifetimeDays": 90}), "POST": json.dumps({"tenant": "gw"})}.get(method, "")
    cold_start()
    with faults.armed():
        rule = faults.add(
            "dynamodb", None, lambda op: aws_error("ProvisionedThroughputExceededException", op), times=100
        )
        r = client.http.request(method, path, headers=auth(), body=body.encode())
    assert rule.hits >= 1
    assert_retry_later(r)
    assert r.json_body["error"] == "Unavailable"
    assert r.json_body["message"] and "Throughput" not in r.json_body["message"]  # no AWS detail leaks out
    cold_start()
    with faults.armed():  # the route's own call, past authentication
        rule = faults.add(
            "dynamodb",
            operation,
            lambda op: aws_error("ThrottlingException", op),
            times=100,
            when=lambda params: params.get("TableName") != "seacat-test-tokens",
        )
        r = client.http.request(method, path, headers=auth(), body=body.encode())
    assert rule.hits >= 1
    assert_retry_later(r)
    state_of("gw")


# -- races, interleaved: the first request's write loses -------------------------------------------------


def test_two_enrolments_of_one_key_interleaved_give_one_certificate(client: Any, faults: Faults) -> None:
    name = tenant(client, "race")
    key = new_key()
    second: list[Any] = []
    with faults.armed():
        faults.add("dynamodb", "TransactWriteItems", None, before=lambda: second.append(enrol(client, name, key)))
        first = enrol(client, name, key)
    assert second[0].status_code == 200
    assert first.status_code == 200 and first.body == second[0].body
    state = state_of(name)
    assert [c["der"] for c in state.certificates_of(identity_of(key))] == [first.body]


def test_an_enrolment_racing_a_block_is_refused_and_stores_nothing(client: Any, faults: Faults) -> None:
    name = tenant(client, "race")
    key = new_key()
    identity = identity_of(key)

    def block() -> None:
        assert client.http.put(f"/{name}/seacat/identity/{identity}/block", headers=auth()).status_code == 200

    with faults.armed():
        faults.add("dynamodb", "TransactWriteItems", None, before=block)
        r = enrol(client, name, key)
    if r.status_code == 503:  # "changed concurrently, retry": the retry is told why
        assert_retry_later(r)
        r = enrol(client, name, key)
    assert r.status_code == 403, r.body
    state = state_of(name)
    assert state.certificates_of(identity) == [] and state.identities[identity]["blocked"] is True


def test_an_enrolment_racing_a_revocation_never_gets_the_revoked_certificate(client: Any, faults: Faults) -> None:
    name = tenant(client, "race")
    key = new_key()
    winner: list[Any] = []

    def enrol_then_revoke() -> None:
        winner.append(enrol(client, name, key))
        cert_id = hashlib.sha384(winner[0].body).hexdigest()
        revoked = client.http.put(
            f"/{name}/x509/cert/{cert_id}/revoke", headers=auth(), body='{"reason": "keyCompromise"}'
        )
        assert revoked.status_code == 200

    with faults.armed():
        faults.add("dynamodb", "TransactWriteItems", None, before=enrol_then_revoke)
        r = enrol(client, name, key)
    state_of(name)
    assert r.status_code in (403, 503), "the revoked certificate was handed out as a fresh enrolment"


def test_two_approvals_interleaved_are_applied_once(client: Any, faults: Faults) -> None:
    name = tenant(client, "manual", manualApproval=True)
    key = new_key()
    pending = enrol(client, name, key)
    assert pending.status_code == 202
    cr_id = pending.json_body["id"]
    other: list[Any] = []
    with faults.armed():
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            None,
            before=lambda: other.append(client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth())),
        )
        first = client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth())
    assert other[0].status_code == 200
    assert first.status_code in (200, 409), first.body
    state = state_of(name)
    request = state.requests[cr_id]
    assert request["state"] == "approved" and int(request["version"]) == 2  # written once after "pending"
    assert state.identities[identity_of(key)]["approved"] is True
    r = enrol(client, name, key)
    assert r.status_code == 200 and len(state_of(name).certificates_of(identity_of(key))) == 1


def test_approve_and_reject_interleaved_one_wins_and_the_state_says_which(client: Any, faults: Faults) -> None:
    name = tenant(client, "manual", manualApproval=True)
    key = new_key()
    cr = build_cr(key, application="faults")
    cr_id = client.http.put(f"/{name}/seacat/enroll", headers=OCTET, body=cr).json_body["id"]
    rejected: list[Any] = []
    with faults.armed():
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            None,
            before=lambda: rejected.append(client.http.put(f"/{name}/seacat/cr/{cr_id}/reject", headers=auth())),
        )
        approved = client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth())
    assert rejected[0].status_code == 200
    assert approved.status_code == 409 and approved.json_body["error"] == "Conflict"
    state = state_of(name)
    assert state.requests[cr_id]["state"] == "rejected"
    assert not state.identities.get(identity_of(key), {}).get("approved")
    assert client.http.put(f"/{name}/seacat/enroll", headers=OCTET, body=cr).status_code == 403
    assert state_of(name).certificates_of(identity_of(key)) == []


def test_two_revocations_interleaved_record_one(client: Any, faults: Faults) -> None:
    name = tenant(client, "race")
    r = enrol(client, name, new_key())
    cert_id = hashlib.sha384(r.body).hexdigest()
    url = f"/{name}/x509/cert/{cert_id}/revoke"
    other: list[Any] = []
    with faults.armed():
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            None,
            before=lambda: other.append(client.http.put(url, headers=auth(), body='{"reason": "superseded"}')),
        )
        first = client.http.put(url, headers=auth(), body='{"reason": "keyCompromise"}')
    assert other[0].status_code == first.status_code == 200
    assert (
        first.json_body["revoked"]
        == other[0].json_body["revoked"]
        == {"at": other[0].json_body["revoked"]["at"], "reason": "superseded"}
    )
    assert authenticate(client, name, r.body) == 403
    state_of(name)


def test_a_serial_collision_never_reuses_a_serial(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.ca import builder

    name = tenant(client, "serials")
    monkeypatch.setattr(builder, "random_serial", lambda: 2**63 + 12345)
    first = enrol(client, name, new_key())
    assert first.status_code == 200
    key = new_key()
    second = enrol(client, name, key)  # same serial: its claim fails inside the transaction
    assert_retry_later(second)
    state = state_of(name)
    assert state.certificates_of(identity_of(key)) == []
    monkeypatch.undo()
    assert enrol(client, name, key).status_code == 200
    state_of(name)


# -- approval and revocation faults ------------------------------------------------------------------------


def test_a_failed_approval_leaves_the_request_pending(client: Any, faults: Faults) -> None:
    name = tenant(client, "manual", manualApproval=True)
    key = new_key()
    cr_id = enrol(client, name, key).json_body["id"]
    for make, after in (FAULT_KINDS["Throttling"], FAULT_KINDS["lost answer"]):
        with faults.armed():
            faults.add("dynamodb", "TransactWriteItems", make, after=after)
            r = client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth())
        assert_retry_later(r)
        state = state_of(name)
        if not after:
            assert state.requests[cr_id]["state"] == "pending"
            assert not state.identities.get(identity_of(key), {}).get("approved")
            assert enrol(client, name, key).status_code == 202
    # the lost answer was applied: approving again answers the recorded approval and changes nothing
    again = client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth())
    assert again.status_code == 200 and again.json_body["request"]["state"] == "approved"
    assert int(state_of(name).requests[cr_id]["version"]) == 2
    assert enrol(client, name, key).status_code == 200


def test_a_failed_revocation_changes_nothing_and_an_interrupted_one_is_completed(client: Any, faults: Faults) -> None:
    from chalicelib.service import enrollment

    name = tenant(client, "revoke")
    key = new_key()
    first = x509.load_der_x509_certificate(enrol(client, name, key).body)
    renewed = enrollment.enroll(
        name, build_cr(key, application="faults"), now=first.not_valid_before_utc + timedelta(days=200)
    )
    assert renewed.der is not None
    ders = [first.public_bytes(serialization.Encoding.DER), renewed.der]  # the renewal is valid from day 200
    cert_id = hashlib.sha384(ders[0]).hexdigest()
    # one certificate: the transaction fails, nothing is revoked
    with faults.armed():
        faults.add("dynamodb", "TransactWriteItems", lambda op: aws_error("ThrottlingException", op))
        r = client.http.put(f"/{name}/x509/cert/{cert_id}/revoke", headers=auth(), body="{}")
    assert_retry_later(r)
    state = state_of(name)
    assert all(c.get("revoked_at") is None for c in state.certificates_of(identity_of(key)))
    assert not state.identities[identity_of(key)].get("revoked_serials")
    assert authenticate(client, name, ders[0]) == 200
    # the identity: interrupted after its newer certificate, refused everywhere at once, completed by a retry
    identity = identity_of(key)
    older = hashlib.sha384(ders[0]).hexdigest()
    with faults.armed():
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            lambda op: aws_error("ThrottlingException", op),
            when=lambda params: (
                older in json.dumps(params, default=str) and "revoked_at" in json.dumps(params, default=str)
            ),
        )
        r = client.http.put(f"/{name}/seacat/identity/{identity}/revoke", headers=auth(), body="{}")
    assert_retry_later(r)
    state = state_of(name)
    assert state.identities[identity].get("revoked_at") is not None
    assert sum(1 for c in state.certificates_of(identity) if c.get("revoked_at")) == 1
    assert authenticate(client, name, ders[0]) == 403  # not revoked yet itself: its identity is
    assert client.http.get(f"/{name}/seacat/get/{identity}").status_code == 404
    assert enrol(client, name, key).status_code == 403
    r = client.http.put(f"/{name}/seacat/identity/{identity}/revoke", headers=auth(), body="{}")
    assert r.status_code == 200 and {c["status"] for c in r.json_body["certificates"]} == {"revoked"}
    cold_start()
    crl = x509.load_der_x509_crl(client.http.get(f"/{name}/x509/crl").body)
    assert {e.serial_number for e in crl} == {x509.load_der_x509_certificate(d).serial_number for d in ders}
    state_of(name)


def test_token_store_throttled_is_503_not_401(client: Any, faults: Faults) -> None:
    with faults.armed():
        faults.add("dynamodb", "GetItem", lambda op: aws_error("ThrottlingException", op))
        r = client.http.get("/tenants/gw", headers=auth())
    assert_retry_later(r)


# -- the approve webhook, a real HTTP server on 127.0.0.1 ---------------------------------------------------


class Hook:
    """A webhook that misbehaves on request; ``calls`` counts POSTs per path."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: dict[str, int] = {}
        self.drip_interrupted = threading.Event()
        self.drip_finished = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.calls[self.path] = outer.calls.get(self.path, 0) + 1
                outer.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/validate"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "ok":
            self.send(h, 200, b'{"result": "OK"}')
        elif mode == "refuse":
            self.send(h, 200, b'{"result": "NO"}')
        elif mode == "html":
            self.send(h, 200, b"<html>OK</html>", {"Content-Type": "text/html"})
        elif mode == "500":
            self.send(h, 500, b'{"result": "OK"}')
        elif mode == "timeout":
            time.sleep(1.5)
            self.send(h, 200, b'{"result": "OK"}')
        elif mode == "redirect":
            self.send(h, 302, b"", {"Location": self.url + "-elsewhere"})
        elif mode == "huge":
            self.send(h, 200, json.dumps({"result": "OK", "pad": "x" * (70 * 1024)}).encode())
        elif mode == "not-http":
            h.wfile.write(b"garbage\r\n\r\n")
        elif mode == "many-headers":
            self.send(h, 200, b'{"result": "OK"}', {f"X-Pad-{i}": "x" for i in range(120)})
        elif mode == "drip":  # a valid answer, one byte at a time, each well inside the timeout
            body = b'{"result": "OK"}' + b" " * 14
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            try:
                for byte in body:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    time.sleep(0.1)
                self.drip_finished.set()
            except OSError:
                self.drip_interrupted.set()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize(
    "mode, status, state",
    [
        ("500", 503, "failed"),
        ("timeout", 503, "failed"),
        ("redirect", 503, "failed"),
        ("unreachable", 503, "failed"),
        ("refuse", 403, "rejected"),
        ("html", 403, "rejected"),
        ("huge", 403, "rejected"),
    ],
)
def test_webhook_faults_issue_nothing_and_record_what_the_client_was_told(
    client: Any, hook: Hook, mode: str, status: int, state: str
) -> None:
    url = hook.url
    if mode == "unreachable":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/validate"  # closed when the block ends
    name = tenant(client, "hooked", approve=url, webhookTimeout=0.5)
    hook.mode = mode
    key = new_key()
    r = enrol(client, name, key)
    assert r.status_code == status, r.body
    if status == 503:
        assert_retry_later(r)
    else:
        assert r.body.strip() and "Retry-After" not in r.headers
    assert hook.calls.get("/validate-elsewhere", 0) == 0, "a redirect was followed"
    after = state_of(name)
    identity = identity_of(key)
    assert after.certificates_of(identity) == []
    recorded = [q for q in after.requests.values() if q["identity"] == identity]
    assert [q["state"] for q in recorded] == [state]
    # the webhook recovers: the retry is approved once and issued once; a duplicate does not ask again
    tenant(client, "hooked", approve=hook.url)
    hook.mode = "ok"
    calls_before = hook.calls.get("/validate", 0)
    ok = enrol(client, name, key)
    assert ok.status_code == 200
    again = enrol(client, name, key)
    assert again.status_code == 200 and again.body == ok.body
    assert hook.calls.get("/validate", 0) == calls_before + 1
    assert [c["der"] for c in state_of(name).certificates_of(identity)] == [ok.body]


@pytest.mark.parametrize("mode", ["not-http", "many-headers"])
def test_a_webhook_that_does_not_speak_http_is_a_503(client: Any, hook: Hook, mode: str) -> None:
    name = tenant(client, "hooked", approve=hook.url, webhookTimeout=0.5)
    hook.mode = mode
    key = new_key()
    r = enrol(client, name, key)
    assert r.status_code == 503, (r.status_code, r.body)
    recorded = [q["state"] for q in state_of(name).requests.values() if q["identity"] == identity_of(key)]
    assert recorded == ["failed"]


def test_the_webhook_timeout_bounds_the_whole_call(client: Any, hook: Hook) -> None:
    name = tenant(client, "hooked", approve=hook.url, webhookTimeout=0.5)
    hook.mode = "drip"  # 30 bytes, 0.1 s apart: 3 s in all against a 0.5 s timeout
    r = enrol(client, name, new_key())
    for _ in range(50):  # the drip ends (or is cut off) within 3 s
        if hook.drip_interrupted.is_set() or hook.drip_finished.is_set():
            break
        time.sleep(0.1)
    assert r.status_code == 503, "the service waited for the whole drip and approved"
    assert hook.drip_interrupted.is_set() and not hook.drip_finished.is_set()
