"""The audit trail: events written with the changes they record, read back by filter and page."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC

OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def events(client: Any, token: str, query: str) -> Any:
    return client.http.get(f"/audit?{query}", headers=auth(token))


def test_a_flow_leaves_its_trail(client: Any, operator_token: str) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    client.http.put("/tenants/acme", headers=auth(operator_token), body='{"lifetimeDays": 90}')
    ca = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).json_body
    key = ec.generate_private_key(ec.SECP256R1())
    cert = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="a"))
    import hashlib

    cert_id = hashlib.sha384(cert.body).hexdigest()
    client.http.put(f"/acme/x509/cert/{cert_id}/revoke", headers=auth(operator_token), body='{"reason": "superseded"}')
    token = client.http.post("/tokens", headers=auth(operator_token), body='{"tenant": "acme"}').json_body
    client.http.delete(f"/tokens/{token['tokenId']}", headers=auth(operator_token))

    r = events(client, operator_token, "tenant=acme")
    assert r.status_code == 200, r.body
    types = [e["type"] for e in r.json_body["items"]]
    assert types == [
        "token.revoked",
        "token.created",
        "certificate.revoked",
        "certificate.issued",
        "ca.created",
        "tenant.updated",
        "key.generated",
        "tenant.created",
    ] or sorted(types) == sorted(
        ["token.revoked", "token.created", "certificate.revoked", "certificate.issued", "ca.created", "tenant.updated", "key.generated", "tenant.created"]
    )
    by_type = {e["type"]: e for e in r.json_body["items"]}
    operator_id = "00000000000000aa"
    assert by_type["ca.created"]["subject"] == ca["_id"] and by_type["ca.created"]["actor"] == operator_id
    assert by_type["certificate.issued"]["actor"] == "client" and by_type["certificate.issued"]["subject"] == cert_id
    assert by_type["certificate.revoked"]["outcome"] == "superseded"
    assert by_type["tenant.updated"]["details"]["changed"] == {"lifetimeDays": 90}
    assert by_type["token.created"]["subject"] == token["tokenId"]
    assert token["token"] not in r.body.decode()
    # filter by type
    only = events(client, operator_token, "tenant=acme&type=certificate.issued").json_body["items"]
    assert [e["type"] for e in only] == ["certificate.issued"]


def test_denied_authentications_are_audited(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    r = client.http.put("/acme/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS", "Content-Type": "text/plain"}, body=bad)
    assert r.status_code == 401
    items = events(client, operator_token, "tenant=acme&type=authentication.denied").json_body["items"]
    assert len(items) == 1 and items[0]["actor"] == "gateway" and items[0]["outcome"] == "401"


def test_pages_and_time_ranges(aws: None, client: Any, operator_token: str) -> None:
    from chalicelib.store import audit as store

    now = datetime.now(timezone.utc)
    for i in range(25):  # spread over three hours
        store.put(store.item("busy", "identity.blocked", "test", f"S{i:02d}", at=now - timedelta(minutes=7 * i)))
    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    seen: list[str] = []
    query = "tenant=busy&type=identity.blocked&limit=4"
    for _ in range(20):
        page = events(client, operator_token, query).json_body
        seen += [e["subject"] for e in page["items"]]
        if not page["next"]:
            break
        query = f"tenant=busy&type=identity.blocked&limit=4&next={page['next']}"
    assert seen == [f"S{i:02d}" for i in range(25)]  # newest first, each once
    from urllib.parse import quote

    since = quote((now - timedelta(minutes=30)).isoformat())
    recent = events(client, operator_token, f"tenant=busy&type=identity.blocked&from={since}").json_body["items"]
    assert [e["subject"] for e in recent] == [f"S{i:02d}" for i in range(5)]


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "tenant"),
        ("tenant=bad.one", "tenant"),
        ("tenant=acme&type=nope", "type"),
        ("tenant=acme&from=yesterday", "from"),
        ("tenant=acme&from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "from"),
        ("tenant=acme&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("tenant=acme&next=zz", "next"),
        ("tenant=acme&limit=1000", "limit"),
    ],
)
def test_bad_queries(client: Any, operator_token: str, query: str, field: str) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    r = events(client, operator_token, query)
    assert r.status_code == 400 and r.json_body["field"] == field


def test_audit_isolation(client: Any, operator_token: str) -> None:
    for name in ("alpha", "beta"):
        client.http.put(f"/tenants/{name}", headers=auth(operator_token), body="{}")
    alpha = client.http.post("/tokens", headers=auth(operator_token), body='{"tenant": "alpha"}').json_body["token"]
    assert events(client, alpha, "tenant=alpha").status_code == 200
    assert events(client, alpha, "tenant=beta").status_code == 404
    assert events(client, alpha, "tenant=_").status_code == 401
    assert client.http.get("/audit?tenant=alpha").status_code == 401
    globals_ = events(client, operator_token, "tenant=_").json_body["items"]
    assert any(e["type"] == "token.created" and e["actor"] == "bootstrap" for e in globals_)


def test_logs_are_json_lines_with_the_request_context(client: Any, operator_token: str, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib import observability

    handler_stream: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_stream.append(observability.JsonFormatter(stage="test").format(record))

    collector = Collect()
    logging.getLogger("seacat").addHandler(collector)
    logging.getLogger("seacat.audit").setLevel(logging.DEBUG)  # audit events are logged at DEBUG
    try:
        client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    finally:
        logging.getLogger("seacat").removeHandler(collector)
        logging.getLogger("seacat.audit").setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in handler_stream]
    access = [line for line in lines if line["logger"] == "seacat.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["tenant"] == "acme" and entry["route"] == "/tenants/{tenant}" and entry["method"] == "PUT"
    assert entry["status"] == 201 and entry["outcome"] == "ok" and entry["duration_ms"] >= 0
    assert entry["actor"] == "00000000000000aa" and entry["request_id"]
    assert operator_token not in "\n".join(handler_stream)
    audits = [line for line in lines if line["logger"] == "seacat.audit"]
    assert {a["audit_event"] for a in audits} == {"tenant.created", "key.generated"}


def test_metrics_are_embedded_metric_format(client: Any, operator_token: str) -> None:
    from chalicelib import observability

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(observability.JsonFormatter(stage="test").format(record))

    collector = Collect()
    logging.getLogger("seacat").addHandler(collector)
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        assert client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="a")).status_code == 200
        assert client.http.put("/acme/seacat/enroll", headers=OCTET, body=b"junk").status_code == 400
    finally:
        logging.getLogger("seacat").removeHandler(collector)
    records = [json.loads(line) for line in lines]
    enrolments = [r for r in records if "Enrolments" in r]
    # the metric rides on the request's one access line (EMF: a log event that is also a metric)
    assert [(r["logger"], r["Outcome"], r["status"]) for r in enrolments] == [
        ("seacat.access", "issued", 200),
        ("seacat.access", "InvalidInput", 400),
    ]
    metric = enrolments[0]["_aws"]["CloudWatchMetrics"][0]
    assert metric["Namespace"] == "SeaCatPKI" and metric["Metrics"] == [{"Name": "Enrolments", "Unit": "Count"}]
    assert metric["Dimensions"] == [["Stage", "Outcome"]] and enrolments[0]["Stage"] == "test"
    assert enrolments[0]["Enrolments"] == 1.0
