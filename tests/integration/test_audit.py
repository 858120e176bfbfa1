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
    assert events(client, alpha, "tenant=_").status_code == 403  # operator only
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


# -- times, page tokens and paging (a times or token problem is a 400 naming the field) -------------


def hexed(value: object) -> str:
    return json.dumps(value).encode().hex()


@pytest.mark.parametrize(
    "query, field",
    [
        ("to=9999-12-31T23:00:00-05:00", "to"),  # 10000-01-01 in UTC
        ("from=9999-12-31T20:00:00-05:00&to=9999-12-31T23:00:00Z", "from"),
        ("to=0001-01-01T03:00:00%2B05:00", "to"),  # year 0 in UTC
        ("from=0001-01-01T01:00:00%2B05:00&to=0001-01-02T00:00:00Z", "from"),
        ("from=0001-01-01T00:00:00%2B05:00&to=0001-01-01T00:00:00%2B05:00", "from"),
        ("to=not-a-time", "to"),
        ("from=2024-01-01T00:00:00%2B25:00", "from"),
    ],
)
def test_times_out_of_range_are_400_naming_the_field(client: Any, operator_token: str, query: str, field: str) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    r = events(client, operator_token, f"tenant=acme&{query}")
    assert r.status_code == 400, r.body
    assert r.json_body["field"] == field and r.json_body["message"]


@pytest.mark.parametrize(
    "query",
    [
        "to=0001-01-01T12:00:00Z",  # the default `from` (a day before) is before the first representable time
        "from=0001-01-01T00:00:00Z&to=0001-01-01T05:00:00Z",
        "from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59.999999Z",
        "from=9999-12-01T00:00:00Z&to=9999-12-31T23:59:59.999999%2B00:00",
    ],
)
def test_times_at_the_ends_of_the_calendar_answer(client: Any, operator_token: str, query: str) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    r = events(client, operator_token, f"tenant=acme&{query}")
    assert r.status_code == 200, r.body
    page = r.json_body
    for _ in range(10):  # a long quiet range pages on with a token: follow it to the end
        if not page["next"]:
            break
        r = events(client, operator_token, f"tenant=acme&{query}&next={page['next']}")
        assert r.status_code == 200, r.body
        page = r.json_body
    assert page["next"] is None and page["items"] == []


def cr_list_token(value: dict[str, Any]) -> str:
    import base64

    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        hexed({"before": "2024-01-01T00:00:00"}),  # no time zone
        hexed({"before": "2024-01-01T00:00:00+05:00"}),  # not the form a page ends with
        hexed({"before": "2024-01-01T00:00:00.000000Z#"}),
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789abcdef", "tenant": "other"}),
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789ABCDEF"}),
        hexed({"before": "2024-13-01T00:00:00.000000Z"}),
        hexed({"before": 5}),
        hexed({"before": None}),
        hexed({}),
        hexed(["2024-01-01T00:00:00.000000Z"]),
        hexed("x"),
        "zz",
        "0",
        "ff" * 8,  # not UTF-8
        hexed({"before": "2024-01-01T00:00:00.000000Z"}).upper() + "0",
        hexed({"before": "2024-01-01T00:00:00.000000Z" + "0" * 5000}),
        cr_list_token({"pk": {"S": "acme#x"}, "pending_key": {"S": "acme#pending"}, "created_at": {"S": "x"}}),  # another list's
    ],
)
def test_malformed_or_foreign_audit_tokens_are_400(client: Any, operator_token: str, token: str) -> None:
    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    r = events(client, operator_token, f"tenant=acme&next={token}")
    assert r.status_code == 400, r.body
    assert r.json_body["field"] == "next"


def test_a_token_cannot_reach_past_to(client: Any, operator_token: str) -> None:
    """A token's position is bounded by the query's range: never an event at or after `to`."""
    from chalicelib.store import audit as store

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    for minutes in (5, 15, 25):
        store.put(store.item("acme", "identity.blocked", "test", f"m{minutes}", at=at + timedelta(minutes=minutes)))
    late = hexed({"before": "2024-05-01T13:00:00.000000Z"})
    r = events(client, operator_token, f"tenant=acme&from=2024-05-01T12:00:00Z&to=2024-05-01T12:20:00Z&next={late}")
    assert r.status_code == 200, r.body
    assert [e["subject"] for e in r.json_body["items"]] == ["m15", "m5"]


def test_a_start_with_an_odd_offset_reads_its_first_hour(client: Any, operator_token: str) -> None:
    """`from` 10:30+00:45 is 09:45 UTC: the 09:00 UTC hour holds events of the range."""
    from chalicelib.store import audit as store

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    store.put(store.item("acme", "identity.blocked", "test", "in", at=datetime(2024, 5, 1, 9, 50, tzinfo=timezone.utc)))
    store.put(store.item("acme", "identity.blocked", "test", "out", at=datetime(2024, 5, 1, 9, 40, tzinfo=timezone.utc)))
    r = events(client, operator_token, "tenant=acme&from=2024-05-01T10:30:00%2B00:45&to=2024-05-01T11:00:00Z")
    assert r.status_code == 200, r.body
    assert [e["subject"] for e in r.json_body["items"]] == ["in"]


def test_a_long_quiet_range_pages_on_to_its_first_hour(client: Any, operator_token: str) -> None:
    """A page reads at most a week of hours; the next one goes on, down to the hour `from` is in."""
    from chalicelib.store import audit as store

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    first = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    store.put(store.item("acme", "identity.blocked", "test", "early", at=first + timedelta(minutes=10)))
    until = first.replace(minute=0) + timedelta(hours=store.MAX_HOURS, minutes=10)  # exactly a week of hours above
    base = f"tenant=acme&from={first.isoformat().replace('+00:00', 'Z')}&to={until.isoformat().replace('+00:00', 'Z')}"
    seen: list[str] = []
    query = base
    for _ in range(5):
        page = events(client, operator_token, query).json_body
        seen += [e["subject"] for e in page["items"]]
        if not page["next"]:
            break
        query = f"{base}&next={page['next']}"
    assert seen == ["early"]


def put_at(tenant: str, at: datetime, subject: str, shard: int | None = None, event: str = "identity.blocked") -> tuple[str, str]:
    from chalicelib.store import audit as store

    entry = store.item(tenant, event, "test", subject, at=at)
    if shard is not None:
        entry.pk = f"{entry.pk.rsplit('#', 1)[0]}#{shard:x}"
    store.put(entry)
    return entry.sk, subject


def test_paging_is_exact_across_hours_and_shards(client: Any, operator_token: str) -> None:
    """Every event once, newest first, whatever the page size: events crowded in one shard, spread
    over all of them, sharing a timestamp, in hours with nothing between them."""
    import random

    rnd = random.Random(7)
    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    base = datetime(2024, 3, 10, 0, 0, tzinfo=timezone.utc)
    stored: list[tuple[str, str]] = []
    n = 0
    for hour in (0, 1, 2, 5, 6, 9):  # hours 3-4 and 7-8 are empty
        start = base + timedelta(hours=hour)
        for _ in range(9):  # crowded: nine events in shard 3
            stored.append(put_at("busy", start + timedelta(seconds=rnd.randrange(3600)), f"E{n:03d}", shard=3))
            n += 1
        for _ in range(7):  # spread
            stored.append(put_at("busy", start + timedelta(seconds=rnd.randrange(3600)), f"E{n:03d}", shard=rnd.randrange(16)))
            n += 1
        same = start + timedelta(minutes=30)
        for shard in (0, 3, 15):  # one instant, three shards
            stored.append(put_at("busy", same, f"E{n:03d}", shard=shard))
            n += 1
    expected = [subject for _, subject in sorted(stored, reverse=True)]
    window = "from=2024-03-09T23:00:00Z&to=2024-03-10T12:00:00Z"
    for limit in (1, 4, 9, 10, 17, 100):
        seen: list[str] = []
        query = f"tenant=busy&{window}&limit={limit}"
        for _ in range(len(expected) + 2):
            r = events(client, operator_token, query)
            assert r.status_code == 200, r.body
            page = r.json_body
            assert len(page["items"]) <= limit
            seen += [e["subject"] for e in page["items"]]
            if not page["next"]:
                break
            query = f"tenant=busy&{window}&limit={limit}&next={page['next']}"
        assert seen == expected, f"limit {limit}"


def test_paging_with_a_type_filter_is_exact(client: Any, operator_token: str) -> None:
    import random

    rnd = random.Random(11)
    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    base = datetime(2024, 3, 10, 0, 0, tzinfo=timezone.utc)
    wanted: list[tuple[str, str]] = []
    for n in range(120):
        event = "identity.unblocked" if n % 3 == 0 else "identity.blocked"
        entry = put_at("busy", base + timedelta(seconds=rnd.randrange(4 * 3600)), f"F{n:03d}", shard=rnd.choice((2, 2, 2, 9)), event=event)
        if event == "identity.unblocked":
            wanted.append(entry)
    expected = [subject for _, subject in sorted(wanted, reverse=True)]
    window = "from=2024-03-10T00:00:00Z&to=2024-03-10T04:00:00Z&type=identity.unblocked"
    seen: list[str] = []
    query = f"tenant=busy&{window}&limit=3"
    for _ in range(len(expected) + 2):
        page = events(client, operator_token, query).json_body
        seen += [e["subject"] for e in page["items"]]
        if not page["next"]:
            break
        query = f"tenant=busy&{window}&limit=3&next={page['next']}"
    assert seen == expected


class QueryCount:
    """Counts DynamoDB Query calls on the audit table (any thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        from pynamodb.connection.base import Connection

        self.calls = 0
        lock = threading.Lock()
        original = Connection.dispatch

        def dispatch(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            if operation == "Query" and str(kwargs.get("TableName", "")).endswith("-audit"):
                with lock:
                    self.calls += 1
            return original(conn, operation, kwargs)

        monkeypatch.setattr(Connection, "dispatch", dispatch)


def test_a_page_full_in_its_first_hour_reads_that_hour_only(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    base = datetime(2024, 3, 10, 5, 0, tzinfo=timezone.utc)
    for n in range(40):
        put_at("busy", base + timedelta(minutes=n), f"D{n:02d}")
        put_at("busy", base - timedelta(hours=1, minutes=-n), f"C{n:02d}")
    count = QueryCount(monkeypatch)
    r = events(client, operator_token, "tenant=busy&from=2024-03-09T05:00:00Z&to=2024-03-10T06:00:00Z&limit=10")
    assert [e["subject"] for e in r.json_body["items"]] == [f"D{n:02d}" for n in range(39, 29, -1)]
    assert count.calls == 16  # the 16 shards of one hour, nothing read ahead


def test_a_quiet_day_is_read_in_bounded_calls(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client.http.put("/tenants/quiet", headers=auth(operator_token), body="{}")
    count = QueryCount(monkeypatch)
    r = events(client, operator_token, "tenant=quiet&from=2024-03-09T00:00:00Z&to=2024-03-10T00:00:00Z")
    assert r.status_code == 200 and r.json_body == {"items": [], "count": 0, "next": None}
    assert count.calls == 24 * 16


def test_shard_queries_share_one_client(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard queries run on worker threads: they use the client the calling thread made, and
    never build a botocore session and client each (≈ 100 ms apiece on a cold container)."""
    import botocore.session

    from chalicelib.store import audit as store
    from chalicelib.store import models

    models._bound = None  # a fresh binding: no audit client yet, as in a new container
    created: list[str] = []
    original = botocore.session.Session.create_client

    def create_client(session: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service)
        return original(session, service, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    now = datetime.now(timezone.utc)
    store.query("acme", now - timedelta(hours=3), now, None, 10, None)
    assert created.count("dynamodb") <= 1


# -- the DynamoDB lists' page tokens carry exactly their query's start key -------------------------


def decoded(token: str) -> dict[str, Any]:
    import base64

    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))  # type: ignore[no-any-return]


def altered_keys(key: dict[str, Any]) -> list[object]:
    """Start keys moto takes and DynamoDB refuses (or another list's), built from a real one."""
    name = sorted(key)[0]
    value = key[name]["S"]
    renamed = {("x" + n if n == name else n): v for n, v in key.items()}
    fewer = {n: v for n, v in key.items() if n != name}
    return [
        {**key, "extra": {"S": "x"}},  # an attribute not in the key
        renamed,
        fewer,
        {**key, name: {"N": "1"}},  # another type
        {**key, name: {"S": 5}},
        {**key, name: {"S": value, "N": "1"}},
        {**key, name: {"S": ""}},
        {**key, name: {"S": value + "x" * 1100}},
        {**key, name: "plain"},
        {**key, name: {"S": "\ud800"}},
        [key],
    ]


@pytest.fixture
def pending(client: Any, operator_token: str) -> list[str]:
    """acme, under manual approval, with five pending CRs."""
    client.http.put("/tenants/acme", headers=auth(operator_token), body='{"manualApproval": true}')
    assert client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).status_code == 201
    ids = []
    for _ in range(5):
        r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="a"))
        assert r.status_code == 202, r.body
        ids.append(r.json_body["id"])
    return ids


def test_pending_cr_tokens_are_checked_exactly(client: Any, operator_token: str, pending: list[str]) -> None:
    url = "/acme/seacat/cr?state=pending&limit=2"
    first = client.http.get(url, headers=auth(operator_token)).json_body
    token = first["next"]
    key = decoded(token)
    assert set(key) == {"pk", "pending_key", "created_at"}
    ok = client.http.get(f"{url}&next={token}", headers=auth(operator_token))
    assert ok.status_code == 200 and len(ok.json_body["items"]) == 2  # the real token still works
    bad: list[object] = [
        *altered_keys(key),
        {**key, "pending_key": {"S": key["pending_key"]["S"] + "x"}},  # another partition than the query's
        {**key, "pk": {"S": "other#" + key["pk"]["S"]}},  # another tenant's
        {"pk": key["pk"], "identity_key": {"S": "acme#X"}, "issued_at": key["created_at"]},  # the identity list's
    ]
    for value in bad:
        r = client.http.get(f"{url}&next={cr_list_token(value)}", headers=auth(operator_token))  # type: ignore[arg-type]
        assert r.status_code == 400 and r.json_body["field"] == "next", value
    respelled = json.dumps(key).encode()  # the same key, not as this service writes it
    import base64

    for other in (base64.urlsafe_b64encode(respelled).decode().rstrip("="), token + "=", token[:-1] + "*", "A" * 3000):
        r = client.http.get(f"{url}&next={other}", headers=auth(operator_token))
        assert r.status_code == 400 and r.json_body["field"] == "next", other


def test_identity_certificate_tokens_are_checked_exactly(client: Any, operator_token: str) -> None:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    identity = base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]
    from cryptography import x509

    from chalicelib.service import enrollment

    cert = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="a"))
    issued = x509.load_der_x509_certificate(cert.body).not_valid_before_utc
    renewed = enrollment.enroll("acme", build_cr(key, application="a"), now=issued + timedelta(days=200))  # a second one
    assert renewed.outcome == "renewed"
    url = f"/acme/seacat/identity/{identity}/certificates?limit=1"
    first = client.http.get(url, headers=auth(operator_token))
    assert first.status_code == 200, first.body
    token = first.json_body["next"]
    start = decoded(token)
    assert set(start) == {"pk", "identity_key", "issued_at"}
    assert client.http.get(f"{url}&next={token}", headers=auth(operator_token)).status_code == 200
    for value in [*altered_keys(start), {**start, "identity_key": {"S": start["identity_key"]["S"] + "A"}}]:
        r = client.http.get(f"{url}&next={cr_list_token(value)}", headers=auth(operator_token))  # type: ignore[arg-type]
        assert r.status_code == 400 and r.json_body["field"] == "next", value


def test_the_operations_guide_documents_the_query() -> None:
    """docs/operations.md names the exact `type=` values and says `tenant` is required."""
    import re
    from pathlib import Path

    from chalicelib.service.audit import EVENTS

    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = guide[guide.index("## Audit trail and logs") :]
    section = section[: section.index("\n## ", 3)]
    listed = re.search(r"- `type`: one of (.*?)\(any other value", section, re.S)
    assert listed is not None
    assert re.findall(r"`([a-z]+\.[a-z]+)`", listed.group(1)) == list(EVENTS)
    assert "`tenant` is **required**" in section and "`_`" in section
