"""The audit trail: events written with the changes they record, read back by filter and page."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
        [
            "token.revoked",
            "token.created",
            "certificate.revoked",
            "certificate.issued",
            "ca.created",
            "tenant.updated",
            "key.generated",
            "tenant.created",
        ]
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
    """A certificate the tenant's CA signed, refused (here: revoked), leaves an event; one it did
    not sign (unparseable here) only a log line and a metric."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    headers = {"X-SSL-Client-Verify": "SUCCESS", "Content-Type": "text/plain"}
    bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert client.http.put("/acme/seacat/nginx_authenticate", headers=headers, body=bad).status_code == 401
    der = client.http.put(
        "/acme/seacat/enroll", headers=OCTET, body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="a")
    ).body
    cert_id = hashlib.sha384(der).hexdigest()
    r = client.http.put(
        f"/acme/x509/cert/{cert_id}/revoke", headers=auth(operator_token), body='{"reason": "superseded"}'
    )
    assert r.status_code < 300, r.body
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    r = client.http.put("/acme/seacat/nginx_authenticate", headers=headers, body=pem)
    assert r.status_code in (401, 403), r.body
    items = events(client, operator_token, "tenant=acme&type=authentication.denied").json_body["items"]
    assert len(items) == 1 and items[0]["actor"] == "gateway" and items[0]["outcome"] == str(r.status_code)


def test_pages_and_time_ranges(aws: None, client: Any, operator_token: str) -> None:
    from chalicelib.store import audit as store

    now = datetime.now(UTC)
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


def test_logs_are_json_lines_with_the_request_context(
    client: Any, operator_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
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
        assert (
            client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="a")).status_code
            == 200
        )
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
    # (other metrics may ride on the same line: the tenant's ActiveCaDaysLeft, once an hour)
    (metric,) = [m for m in enrolments[0]["_aws"]["CloudWatchMetrics"] if m["Metrics"][0]["Name"] == "Enrolments"]
    assert metric["Namespace"] == "SeaCatPKI" and metric["Metrics"] == [{"Name": "Enrolments", "Unit": "Count"}]
    assert metric["Dimensions"] == [["Stage", "Outcome"]] and enrolments[0]["Stage"] == "test"
    assert enrolments[0]["Enrolments"] == 1.0


# -- times, page tokens and paging (a times or token problem is a 400 naming the field) -------------


def hexed(value: object) -> str:
    return json.dumps(value).encode().hex()


MEMORY_TOKEN = "sct_00000000000000bb_memory-operator-token-0123456789"


class Trail:
    """The audit API on one storage adapter, with a way to write events at chosen times."""

    def __init__(self, client: Any, token: str, put: Any) -> None:
        self.client, self.token, self._put = client, token, put

    def get(self, query: str) -> Any:
        return events(self.client, self.token, query)

    def put(
        self, tenant: str, at: datetime, subject: str, shard: int | None = None, event: str = "identity.blocked"
    ) -> tuple[str, str]:
        """Write an event (in DynamoDB, in ``shard`` if given) and return its sort key and subject."""
        return self._put(tenant, at, subject, shard, event)  # type: ignore[no-any-return]

    def follow(self, query: str, pages: int = 1000) -> list[list[str]]:
        """The subjects of every page, following ``next`` until it is null."""
        seen: list[list[str]] = []
        token = None
        for _ in range(pages):
            r = self.get(query + (f"&next={token}" if token else ""))
            assert r.status_code == 200, r.body
            seen.append([e["subject"] for e in r.json_body["items"]])
            token = r.json_body["next"]
            if not token:
                return seen
        raise AssertionError(f"still a next token after {pages} pages")


def put_at(
    tenant: str, at: datetime, subject: str, shard: int | None = None, event: str = "identity.blocked"
) -> tuple[str, str]:
    from chalicelib.store import audit as store

    entry = store.item(tenant, event, "test", subject, at=at)
    if shard is not None:
        entry.pk = f"{entry.pk.rsplit('#', 1)[0]}#{shard:x}"
    store.put(entry)
    return entry.sk, subject


@pytest.fixture(params=["dynamodb", "memory"])
def trail(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    """The same expectations on the DynamoDB store (moto) and on the in-memory one."""
    if request.param == "dynamodb":
        client, token = request.getfixturevalue("client"), request.getfixturevalue("operator_token")
        client.http.put("/tenants/acme", headers=auth(token), body="{}")
        yield Trail(client, token, put_at)
        return
    from chalicelib.store import audit as store
    from tests.conftest import memory_client

    with memory_client(monkeypatch, MEMORY_TOKEN) as (client, backend):

        def put(tenant: str, at: datetime, subject: str, shard: int | None, event: str) -> tuple[str, str]:
            entry = backend.audit.item(tenant, event, "test", subject, at=at)
            backend.audit.put(entry)
            return store.sort_key(entry.at, entry.event_id), subject

        client.http.put("/tenants/acme", headers=auth(MEMORY_TOKEN), body="{}")
        yield Trail(client, MEMORY_TOKEN, put)


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
def test_times_at_the_ends_of_the_calendar_answer(trail: Trail, query: str) -> None:
    r = trail.get(f"tenant=acme&{query}")
    assert r.status_code == 200, r.body
    assert r.json_body == {"items": [], "count": 0, "next": None}  # a quiet range: one page, no token


def cr_list_token(value: dict[str, Any]) -> str:
    import base64

    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        hexed({"before": "2024-01-01T00:00:00"}),  # no time zone
        hexed({"before": "2024-01-01T00:00:00+05:00"}),  # not the form a page ends with
        hexed({"before": "2024-01-01T00:00:00.000000Z"}),  # a bare time: pages end at an event's key
        hexed({"before": "2024-01-01T00:00:00.000000Z#"}),
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789abcdef", "tenant": "other"}),
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789ABCDEF"}),
        hexed({"before": "2024-13-01T00:00:00.000000Z#0123456789abcdef"}),
        hexed({"before": 5}),
        hexed({"before": None}),
        hexed({}),
        hexed(["2024-01-01T00:00:00.000000Z#0123456789abcdef"]),
        hexed("x"),
        "zz",
        "0",
        "7",  # the in-memory store's old offsets
        "ff" * 8,  # not UTF-8
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789abcdef"}).upper(),
        hexed({"before": "2024-01-01T00:00:00.000000Z#0123456789abcdef" + "0" * 5000}),
        cr_list_token(
            {"pk": {"S": "acme#x"}, "pending_key": {"S": "acme#pending"}, "created_at": {"S": "x"}}
        ),  # another list's
    ],
)
def test_malformed_or_foreign_audit_tokens_are_400(trail: Trail, token: str) -> None:
    r = trail.get(f"tenant=acme&next={token}")
    assert r.status_code == 400, r.body
    assert r.json_body["field"] == "next"


def test_a_token_cannot_reach_past_to(trail: Trail) -> None:
    """A token's position is bounded by the query's range: never an event at or after `to`."""
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for minutes in (5, 15, 25):
        trail.put("acme", at + timedelta(minutes=minutes), f"m{minutes}")
    window = "tenant=acme&from=2024-05-01T12:00:00Z&to=2024-05-01T12:20:00Z"
    late = hexed({"before": "2024-05-01T13:00:00.000000Z#" + "0" * 16})
    r = trail.get(f"{window}&next={late}")
    assert r.status_code == 200, r.body
    assert [e["subject"] for e in r.json_body["items"]] == ["m15", "m5"]
    early = hexed({"before": "2024-05-01T11:00:00.000000Z#" + "f" * 16})  # below `from`: nothing left
    assert trail.get(f"{window}&next={early}").json_body == {"items": [], "count": 0, "next": None}


def test_from_is_included_and_to_excluded_after_conversion_to_utc(trail: Trail) -> None:
    """`from` 10:30+00:45 is 09:45 UTC: an event at that instant is in, one at `to` is out."""
    trail.put("acme", datetime(2024, 5, 1, 9, 45, tzinfo=UTC), "at-from")
    trail.put("acme", datetime(2024, 5, 1, 9, 50, tzinfo=UTC), "in")
    trail.put("acme", datetime(2024, 5, 1, 9, 40, tzinfo=UTC), "before")
    trail.put("acme", datetime(2024, 5, 1, 11, 0, tzinfo=UTC), "at-to")
    r = trail.get("tenant=acme&from=2024-05-01T10:30:00%2B00:45&to=2024-05-01T11:00:00Z")
    assert r.status_code == 200, r.body
    assert [e["subject"] for e in r.json_body["items"]] == ["in", "at-from"]


@pytest.mark.slow  # hundreds of queries on moto
def test_paging_is_exact_across_hours_and_shards(trail: Trail) -> None:
    """Every event once, newest first, whatever the page size: events crowded in one shard, spread
    over all of them, sharing a timestamp, at the range's bounds, in hours with nothing between."""
    import random

    from chalicelib.store import audit as store

    rnd = random.Random(7)
    base = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
    stored: list[tuple[str, str]] = []
    n = 0

    def put(at: datetime, shard: int) -> tuple[str, str]:
        nonlocal n
        n += 1
        return trail.put("acme", at, f"E{n - 1:03d}", shard=shard)

    for hour in (0, 1, 2, 5, 6, 9):  # hours 3-4 and 7-8 are empty
        start = base + timedelta(hours=hour)
        stored += [put(start + timedelta(seconds=rnd.randrange(3600)), 3) for _ in range(9)]  # crowded in one shard
        stored += [put(start + timedelta(seconds=rnd.randrange(3600)), rnd.randrange(store.SHARDS)) for _ in range(7)]
        stored += [put(start + timedelta(minutes=30), shard) for shard in (0, 3, store.SHARDS - 1)]  # one instant
    first, end = datetime(2024, 3, 9, 23, 0, tzinfo=UTC), datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    stored += [put(first, shard) for shard in (1, 1, 6)]  # at `from`: in the range
    put(end, 2)  # at `to`: out of it
    put(first - timedelta(microseconds=1), 5)
    expected = [subject for _, subject in sorted(stored, reverse=True)]
    window = "tenant=acme&from=2024-03-09T23:00:00Z&to=2024-03-10T12:00:00Z"
    for limit in (1, 4, 9, 10, 17, 100):
        pages = trail.follow(f"{window}&limit={limit}")
        assert all(len(page) == limit for page in pages[:-1]) and len(pages[-1]) <= limit  # no short page unfiltered
        assert [s for page in pages for s in page] == expected, f"limit {limit}"


@pytest.mark.slow  # hundreds of queries on moto
@pytest.mark.parametrize("evaluated", [None, 3])  # a type filter's Query evaluates FILTERED_PAGE items, or 3
def test_paging_with_a_type_filter_is_exact(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, evaluated: int | None
) -> None:
    import random

    from chalicelib.store import audit as store

    if evaluated:
        monkeypatch.setattr(store, "FILTERED_PAGE", evaluated)  # continuations and short pages with tokens
    rnd = random.Random(11)
    base = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
    wanted: list[tuple[str, str]] = []
    for n in range(120):
        event = "identity.unblocked" if n % 3 == 0 else "identity.blocked"
        at = base + timedelta(seconds=rnd.randrange(4 * 3600))
        entry = trail.put("acme", at, f"F{n:03d}", shard=rnd.choice((2, 2, 2, store.SHARDS - 1)), event=event)
        if event == "identity.unblocked":
            wanted.append(entry)
    expected = [subject for _, subject in sorted(wanted, reverse=True)]
    window = "tenant=acme&from=2024-03-10T00:00:00Z&to=2024-03-10T04:00:00Z&type=identity.unblocked"
    for limit in (1, 3, 10, 100):
        pages = trail.follow(f"{window}&limit={limit}")
        assert all(len(page) <= limit for page in pages)
        assert [s for page in pages for s in page] == expected, f"limit {limit}"


def test_a_token_is_a_position_not_an_offset(trail: Trail) -> None:
    """Events written between two pages (newer than the first) neither repeat nor hide any."""
    now = datetime.now(UTC)
    for n in range(6):
        trail.put("acme", now - timedelta(minutes=n + 1), f"old{n}")
    query = "tenant=acme&type=identity.blocked&limit=3"  # not the tenant's own creation events
    first = trail.get(query).json_body
    assert [e["subject"] for e in first["items"]] == ["old0", "old1", "old2"]
    for n in range(4):
        trail.put("acme", now - timedelta(seconds=n + 1), f"new{n}")
    rest = trail.get(f"{query}&next={first['next']}").json_body
    assert [e["subject"] for e in rest["items"]] == ["old3", "old4", "old5"] and rest["next"] is None


# -- what one page costs: at most MAX_QUERIES DynamoDB Queries, whatever the range ------------------


class QueryCount:
    """Counts DynamoDB Query calls on the audit table (any thread) and the most items one may evaluate."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        from pynamodb.connection.base import Connection

        self.calls = 0
        self.limits: list[int | None] = []
        lock = threading.Lock()
        original = Connection.dispatch

        def dispatch(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            if operation == "Query" and str(kwargs.get("TableName", "")).endswith("-audit"):
                with lock:
                    self.calls += 1
                    self.limits.append(kwargs.get("Limit"))
            return original(conn, operation, kwargs)

        monkeypatch.setattr(Connection, "dispatch", dispatch)

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


def put_many(entries: list[Any]) -> None:
    from chalicelib.store.models import AuditModel

    with AuditModel.batch_write() as batch:
        for entry in entries:
            batch.save(entry)


def test_a_quiet_week_costs_one_query_per_shard(
    client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store import audit as store

    client.http.put("/tenants/quiet", headers=auth(operator_token), body="{}")
    count = QueryCount(monkeypatch)
    r = events(client, operator_token, "tenant=quiet&from=2024-03-03T00:00:00Z&to=2024-03-10T00:00:00Z")
    assert r.status_code == 200 and r.json_body == {"items": [], "count": 0, "next": None}
    assert count.calls == store.SHARDS  # one range query per shard, no hour walked


def test_a_400_day_range_costs_at_most_ten_queries(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store itself takes any range (the API caps it at 31 days): a year's cost is a day's."""
    from chalicelib.store import audit as store

    start = datetime(2023, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=400)
    put_many(
        [
            store.item("acme", "identity.blocked", "test", f"Y{n}", at=start + timedelta(days=n * 57, hours=n))
            for n in range(8)
        ]
    )
    put_many([store.item("acme", "identity.blocked", "test", "out", at=end)])
    count = QueryCount(monkeypatch)
    found, token = store.query("acme", start, end, None, 50, None)
    assert [e.subject for e in found] == [f"Y{n}" for n in range(7, -1, -1)] and token is None
    assert count.take() <= store.MAX_QUERIES
    pages, token = [], None
    while True:  # one at a time
        found, token = store.query("acme", start, end, None, 1, token)
        assert count.take() <= store.MAX_QUERIES
        pages.append([e.subject for e in found])
        if token is None:
            break
    assert pages == [[f"Y{n}"] for n in range(7, -1, -1)]


@pytest.mark.slow  # hundreds of queries on moto
@pytest.mark.parametrize("limit", [7, 100])
def test_events_spread_over_many_hours_cost_at_most_ten_queries_a_page(
    client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    from chalicelib.store import audit as store

    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    start = datetime(2024, 3, 1, tzinfo=UTC)
    entries = [
        store.item("busy", "identity.blocked", "test", f"H{n:03d}", at=start + timedelta(minutes=97 * n))
        for n in range(300)
    ]
    put_many(entries)  # 300 events over 20 days: about one every 1.6 hours
    expected = [e.subject for e in sorted(entries, key=lambda e: e.sk, reverse=True)]
    count = QueryCount(monkeypatch)
    window = "tenant=busy&from=2024-03-01T00:00:00Z&to=2024-03-31T00:00:00Z"
    seen: list[str] = []
    query = f"{window}&limit={limit}"
    for _ in range(len(expected) + 2):
        page = events(client, operator_token, query).json_body
        assert count.take() == store.SHARDS  # unfiltered: every page is one query per shard
        seen += [e["subject"] for e in page["items"]]
        if not page["next"]:
            break
        query = f"{window}&limit={limit}&next={page['next']}"
    assert seen == expected
    assert all(n is not None and n <= limit + 2 for n in count.limits)  # each query evaluates at most a page and two


@pytest.mark.slow  # hundreds of queries on moto
@pytest.mark.parametrize("evaluated, limit", [(None, 50), (20, 10)])  # FILTERED_PAGE as it is, or small: many pages
def test_a_rare_type_costs_at_most_ten_queries_a_page(
    client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch, evaluated: int | None, limit: int
) -> None:
    """1,200 events of other types around 4 of the one asked for: every page stays within the
    budget (a short page comes back with a token), and the pages together list the 4, once."""
    from chalicelib.store import audit as store

    if evaluated:
        monkeypatch.setattr(store, "FILTERED_PAGE", evaluated)
    client.http.put("/tenants/busy", headers=auth(operator_token), body="{}")
    start = datetime(2024, 3, 10, tzinfo=UTC)
    noise = [
        store.item("busy", "identity.blocked", "test", f"N{n}", at=start + timedelta(seconds=30 * n))
        for n in range(1200)
    ]
    rare = [
        store.item("busy", "identity.revoked", "test", f"R{n}", at=start + timedelta(seconds=30 * n * 397 + 7))
        for n in range(4)
    ]
    put_many(noise + rare)
    expected = [e.subject for e in sorted(rare, key=lambda e: e.sk, reverse=True)]
    count = QueryCount(monkeypatch)
    window = f"tenant=busy&from=2024-03-10T00:00:00Z&to=2024-03-11T00:00:00Z&type=identity.revoked&limit={limit}"
    evaluate = max(store.FILTERED_PAGE, limit + 2)
    # a page reads at least the slowest shard's first `evaluate` items below the token
    most = len(noise) // evaluate + 2
    seen: list[str] = []
    query = window
    for pages in range(1, most + 1):  # noqa: B007 - read after the loop
        page = events(client, operator_token, query).json_body
        assert count.take() <= store.MAX_QUERIES
        seen += [e["subject"] for e in page["items"]]
        if not page["next"]:
            break
        query = f"{window}&next={page['next']}"
    assert page["next"] is None, f"more than {most} pages"
    assert seen == expected
    assert evaluated is None or pages > 1  # the small evaluation did page
    assert all(n is not None and n <= evaluate for n in count.limits)


def test_shard_queries_share_one_client(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard queries run on worker threads: they use the client the calling thread made, and
    never build a botocore session and client each (≈ 100 ms apiece on a cold container)."""
    import botocore.session

    from chalicelib.store import audit as store
    from chalicelib.store import models

    models.unbind()  # a fresh binding: no audit client yet, as in a new container
    created: list[str] = []
    original = botocore.session.Session.create_client

    def create_client(session: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service)
        return original(session, service, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    now = datetime.now(UTC)
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
    assert (
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).status_code == 201
    )
    ids = []
    for _ in range(5):
        r = client.http.put(
            "/acme/seacat/enroll",
            headers=OCTET,
            body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="a"),
        )
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
    renewed = enrollment.enroll(
        "acme", build_cr(key, application="a"), now=issued + timedelta(days=200)
    )  # a second one
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
    assert re.findall(r"`([a-z_]+\.[a-z_]+)`", listed.group(1)) == list(EVENTS)
    assert "`tenant` is **required**" in section and "`_`" in section
