"""Concurrency against `make run-emulator`'s stack (moto server + chalice local on 127.0.0.1), checked
in the emulator's tables afterwards: DynamoDB's conditional writes and transactions, as on AWS.

Bounded: at most 8 parallel clients, at most 50 requests per case, every request with a timeout.
tests/e2e/test_local_stack.py enrols 16 distinct keys and one CR 8 times at once; this module adds
what those leave open: the stored state behind the answers, the same key with different CRs,
CA creation in parallel, and revocation racing renewal.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC
from tests.e2e.conftest import Stack, setup_tenant
from tests.e2e.conftest import http as _http

http = functools.partial(_http, close=True)  # a new connection each, closed: parallel clients

WORKERS = 8
OCTET = {"Content-Type": "application/octet-stream"}


def parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    assert len(calls) <= 50
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return [f.result(timeout=120) for f in [pool.submit(c) for c in calls]]


def admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}


def identity_of(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


class Tables:
    """The stack's DynamoDB tables, read straight from its emulator."""

    def __init__(self, stack: Stack) -> None:
        import boto3

        found = re.search(r"AWS emulator:\s+(http://127\.0\.0\.1:\d+)", stack.log.read_text())
        assert found, "no emulator endpoint in the stack's log"
        self.ddb = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=found.group(1),
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def scan(self, table: str, tenant: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": f"seacat-local-{table}", "ConsistentRead": True}
        for _ in range(1000):
            page = self.ddb.scan(**kwargs)
            for raw in page["Items"]:
                item = {k: deserializer.deserialize(v) for k, v in raw.items()}
                item = {k: (v.value if hasattr(v, "value") else v) for k, v in item.items()}
                if item.get("tenant_id") == tenant:
                    items.append(item)
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        raise AssertionError("too many pages")

    def check_certificates(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        """Serial claims match certificates one to one, no serial twice; certificates by identity."""
        certs = self.scan("certificates", tenant)
        issued = [c for c in certs if c["kind"] == "seacat"]
        claims = {c["pk"].split("#serial#", 1)[1]: c["cert_id"] for c in certs if c["kind"] == "serial"}
        serials = [c["serial"] for c in issued]
        assert len(serials) == len(set(serials)), "a serial was used twice"
        assert claims == {c["serial"]: c["cert_id"] for c in issued}
        by_identity: dict[str, list[dict[str, Any]]] = {}
        for cert in issued:
            by_identity.setdefault(cert["identity"], []).append(cert)
        identities = {i["identity"]: i for i in self.scan("identities", tenant)}
        for identity, mine in by_identity.items():
            assert int(identities[identity]["certificates"]) == len(mine), identity
            assert identities[identity]["cert_id"] in {c["cert_id"] for c in mine}
        return by_identity


@pytest.fixture(scope="module")
def stack(emulator_stack: Stack) -> Stack:
    """This module is about the AWS wiring: the emulator's stack."""
    return emulator_stack


@pytest.fixture(scope="module")
def tables(stack: Stack) -> Tables:
    return Tables(stack)


def test_many_distinct_keys_at_once_each_get_their_own_stored_certificate(stack: Stack, tables: Tables) -> None:
    setup_tenant(stack, "conc-keys")
    url = f"{stack.url}/conc-keys/seacat/enroll"
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(40)]
    crs = [build_cr(k, application="conc") for k in keys]
    results = parallel([lambda cr=cr: http("PUT", url, cr, OCTET) for cr in crs])
    assert [status for status, _, _ in results] == [200] * len(keys)
    certs = [x509.load_der_x509_certificate(body) for _, _, body in results]
    assert len({c.serial_number for c in certs}) == len(keys)
    assert all(c.public_key() == k.public_key() for c, k in zip(certs, keys, strict=False))
    stored = tables.check_certificates("conc-keys")
    assert {i: [c["der"] for c in v] for i, v in stored.items()} == {
        identity_of(k): [body] for k, (_, _, body) in zip(keys, results, strict=False)
    }
    # each is what the peer lookup serves
    looked_up = parallel([lambda k=k: http("GET", f"{stack.url}/conc-keys/seacat/get/{identity_of(k)}") for k in keys])
    assert [body for _, _, body in looked_up] == [body for _, _, body in results]


def test_one_key_many_times_at_once_gets_one_certificate(stack: Stack, tables: Tables) -> None:
    setup_tenant(stack, "conc-dup")
    url = f"{stack.url}/conc-dup/seacat/enroll"
    key = ec.generate_private_key(ec.SECP256R1())
    same = build_cr(key, application="dup")
    # the same CR bytes 24 times, and 16 different CRs of the same key (each retry signs anew)
    calls = [lambda: http("PUT", url, same, OCTET) for _ in range(24)]
    calls += [lambda: http("PUT", url, build_cr(key, application="dup"), OCTET) for _ in range(16)]
    results = parallel(calls)
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1, statuses
    assert all(int(h["Retry-After"]) > 0 for s, h, _ in results if s == 503)
    bodies = {b for s, _, b in results if s == 200}
    assert len(bodies) == 1
    (der,) = bodies
    stored = tables.check_certificates("conc-dup")
    assert [c["der"] for c in stored[identity_of(key)]] == [der]
    # the request that was issued records the certificate the clients got
    issued = [r for r in tables.scan("requests", "conc-dup") if r["state"] == "issued"]
    assert [r["cert_id"] for r in issued] == [hashlib.sha384(der).hexdigest()]


def test_concurrent_ca_creation_lists_every_created_ca(stack: Stack, tables: Tables) -> None:
    name = "conc-ca"
    assert http("PUT", f"{stack.url}/tenants/{name}", b"{}", admin(stack))[0] == 201
    url = f"{stack.url}/{name}/x509/self-signed"
    results = parallel([lambda: http("PUT", url, REFERENCE_SPEC.encode(), admin(stack)) for _ in range(12)])
    created = []
    for status, headers, body in results:
        assert status in (201, 409, 503), (status, body[:200])
        answer = json.loads(body)
        if status == 201:
            created.append(answer["_id"])
        else:
            assert answer["error"] in ("Conflict", "Unavailable") and answer["message"]
            if status == 503:
                assert int(headers["Retry-After"]) > 0
    assert created, "no CA creation succeeded"
    status, _, body = http("GET", f"{stack.url}/tenants/{name}", headers=admin(stack))
    tenant = json.loads(body)
    listed = [ca.split(":", 1)[1] for ca in tenant["caCertificates"]]
    assert sorted(listed) == sorted(created), "a 201 that is not listed, or a listed CA nobody was told about"
    assert tenant["activeCa"].split(":", 1)[1] in created
    for cert_id in created:
        assert http("GET", f"{stack.url}/{name}/x509/cert/{cert_id}", headers=admin(stack))[0] == 200
    stored = sorted(c["cert_id"] for c in tables.scan("certificates", name) if c["kind"] == "ca")
    assert stored == sorted(created)
    (item,) = tables.scan("tenants", name)
    assert [e["cert_id"] for e in item["cas"]] == listed and item["active_ca"] == tenant["activeCa"].split(":", 1)[1]


def age_identity(tables: Tables, tenant: str, identity: str) -> None:
    """Make the identity's current certificate look 200 days old (inside the renewal window)."""
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%f%z"
    tables.ddb.update_item(
        TableName="seacat-local-identities",
        Key={"pk": {"S": f"{tenant}#{identity}"}},
        UpdateExpression="SET cert_not_before = :b, cert_not_after = :a",
        ExpressionAttributeValues={
            ":b": {"S": (now - timedelta(days=200)).strftime(fmt)},
            ":a": {"S": (now + timedelta(days=165)).strftime(fmt)},
        },
    )


@pytest.mark.parametrize("revoke", ["identity", "certificate"])
def test_revocation_racing_renewal_ends_consistent(stack: Stack, tables: Tables, revoke: str) -> None:
    name = f"conc-revoke-{revoke}"
    setup_tenant(stack, name)
    key = ec.generate_private_key(ec.SECP256R1())
    identity = identity_of(key)
    status, _, first = http("PUT", f"{stack.url}/{name}/seacat/enroll", build_cr(key, application="r"), OCTET)
    assert status == 200
    age_identity(tables, name, identity)
    first_id = hashlib.sha384(first).hexdigest()
    revoke_call: Callable[[], Any] = (
        (
            lambda: http(
                "PUT",
                f"{stack.url}/{name}/seacat/identity/{identity}/revoke",
                b'{"reason": "keyCompromise"}',
                admin(stack),
            )
        )
        if revoke == "identity"
        else (
            lambda: http(
                "PUT", f"{stack.url}/{name}/x509/cert/{first_id}/revoke", b'{"reason": "keyCompromise"}', admin(stack)
            )
        )
    )
    renewals = [
        lambda: http("PUT", f"{stack.url}/{name}/seacat/enroll", build_cr(key, application="r"), OCTET)
        for _ in range(12)
    ]
    calls = renewals[:4] + [revoke_call] + renewals[4:]
    results = parallel(calls)
    revoked = results[4]
    assert revoked[0] == 200, revoked[2][:200]
    renewed = {body for status, _, body in results[:4] + results[5:] if status == 200}
    for status, headers, body in results[:4] + results[5:]:
        assert status in (200, 403, 503), (status, body[:200])
        if status == 503:
            assert int(headers["Retry-After"]) > 0
    assert len(renewed - {first}) <= 1, "more than one renewal was issued"
    by_identity = tables.check_certificates(name)[identity]
    record = {i["identity"]: i for i in tables.scan("identities", name)}[identity]
    served_status, _, served = http("GET", f"{stack.url}/{name}/seacat/get/{identity}")
    pem = lambda der: x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)  # noqa: E731

    def gateway(der: bytes) -> int:
        return http(
            "PUT", f"{stack.url}/{name}/seacat/nginx_authenticate", pem(der), {"X-SSL-Client-Verify": "SUCCESS"}
        )[0]

    if revoke == "identity":
        assert record.get("revoked_at") is not None
        # no certificate of a revoked identity is left unrevoked, served, or let through
        assert all(c.get("revoked_at") is not None for c in by_identity), "a newer certificate escaped the revocation"
        assert served_status == 404
        assert all(gateway(c["der"]) == 403 for c in by_identity)
        assert http("PUT", f"{stack.url}/{name}/seacat/enroll", build_cr(key, application="r"), OCTET)[0] == 403
    else:
        first_serial = format(x509.load_der_x509_certificate(first).serial_number, "x")
        assert first_serial in (record.get("revoked_serials") or set())
        assert gateway(first) == 403
        # /get never serves the revoked certificate; whatever it serves is stored, current and unrevoked
        if served_status == 200:
            assert served != first
            (current,) = [c for c in by_identity if c["der"] == served]
            assert current.get("revoked_at") is None and gateway(served) == 200
        else:
            assert served_status == 404
    crl_status, _, crl_der = http("GET", f"{stack.url}/{name}/x509/crl")
    assert crl_status == 200
    in_crl = {entry.serial_number for entry in x509.load_der_x509_crl(crl_der)}
    revoked_serials = {int(c["serial"], 16) for c in by_identity if c.get("revoked_at") is not None}
    assert revoked_serials and revoked_serials <= in_crl
