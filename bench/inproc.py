"""The real Chalice handlers in one process, one request at a time (a warm Lambda container):
enrol (new identity, renewal, duplicate) and nginx_authenticate (revocation-cache hit and miss),
once on the in-memory store (``context.use_memory()``: the service's own cost) and once on moto
in-process (``mock_aws``: the service plus the emulator's DynamoDB/Secrets Manager).

The handlers are invoked as Lambda invokes them, ``app(event, context)`` with an API Gateway proxy
event: chalice.test.Client adds its own local-gateway emulation per request (measured and
reported as ``client_overhead_us``), which Lambda does not run.
"""

from __future__ import annotations

import collections
import contextlib
import cProfile
import io
import json
import pstats
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.common import (
    CALLS,
    CONTEXT,
    ROOT,
    STAGE,
    Rate,
    api_event,
    body_of,
    by_operation,
    cycle,
    measure,
    measure_paired,
    repeat,
    reset_container,
    say,
    set_env,
    total,
)
from bench.raw import Reference

TENANT = "bench"
TOKEN = "sct_00000000000000be_bench-operator-token-0123456789"
CA_SPEC = {
    "serialNumber": 1,
    "subject": {"O": "Bench", "CN": "Bench CA"},
    "validity": {"notBefore": "now", "notAfter": {"weeks": 1040}},
    "extensions": [
        {"basicConstraints": {"CA": True, "pathLen": 0}, "critical": True},
        {"keyUsage": ["keyCertSign", "cRLSign"]},
    ],
}
OCTET = {"Content-Type": "application/octet-stream"}
ENROLL = "/{tenant}/seacat/enroll"
AUTH = "/{tenant}/seacat/nginx_authenticate"
AUTH_POOL = 64
# Back-dated issue time for the certificates renewed: past their half-life now, so the clients'
# renewal window is open and a PUT issues a new certificate (enrollment.in_renewal_window).
RENEWAL_AGE = timedelta(days=200)


def _app() -> Any:
    from app import app

    return app


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return _app()(event, CONTEXT)  # type: ignore[no-any-return]


def admin(method: str, resource: str, params: dict[str, str], body: object | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else b"{}"
    return invoke(api_event(method, resource, params, headers, data))


def create_tenant(tenant: str = TENANT, *, ca: bool = True) -> None:
    r = admin("PUT", "/tenants/{tenant}", {"tenant": tenant}, {})
    assert r["statusCode"] == 201, body_of(r)
    if ca:
        r = admin("PUT", "/{tenant}/x509/self-signed", {"tenant": tenant}, CA_SPEC)
        assert r["statusCode"] == 201, body_of(r)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cr_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    from seacat_client.cr import build_cr

    return build_cr(key, application="bench")


def enroll_event(cr: bytes, tenant: str = TENANT) -> dict[str, Any]:
    return api_event("PUT", ENROLL, {"tenant": tenant}, OCTET, cr)


def auth_event(pem: bytes, tenant: str = TENANT) -> dict[str, Any]:
    headers = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS", "X-Forwarded-Request": "GET / HTTP/1.1"}
    return api_event("PUT", AUTH, {"tenant": tenant}, headers, pem)


def enroll_ok(cr: bytes) -> bytes:
    r = invoke(enroll_event(cr))
    assert r["statusCode"] == 200, body_of(r)
    return body_of(r)


def seeded_for_renewal(n: int) -> list[tuple[dict[str, Any], bytes]]:
    """``n`` identities whose certificate was issued RENEWAL_AGE ago, each with the event of its renewal."""
    from chalicelib.service import enrollment

    late = datetime.now(UTC) - RENEWAL_AGE
    out = []
    for _ in range(n):
        key = new_key()
        first = enrollment.enroll(TENANT, cr_of(key), now=late)
        assert first.outcome == "issued" and first.der is not None
        out.append((enroll_event(cr_of(key)), first.der))
    return out


class Recorder:
    """Invokes and keeps the answers, so a run is checked after its timing."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.responses.append(invoke(event))

    def take(self, done: int) -> list[dict[str, Any]]:
        got, self.responses = self.responses[-done:], []
        return got


def _measure(
    ref: Reference | None,
    kind: str,
    op: Callable[[Any], object],
    prepare: Callable[[int], Sequence[Any]],
    **bounds: Any,
) -> Rate:
    """Unpaired on moto (its ratios are the emulator's); on the in-memory store each run is paired (interleaved)
    with a run of the raw operation it is compared with (``kind``: enroll or verify)."""
    if ref is None:
        return measure(op, prepare, **bounds)
    if kind == "enroll":
        return measure_paired(op, prepare, ref.enroll, cycle(ref.crs), **bounds)
    return measure_paired(op, prepare, ref.verify, cycle(ref.pems), **bounds)


def _check_status(rec: Recorder, done: int, what: str, status: int = 200) -> None:
    bad = [r for r in rec.take(done) if r["statusCode"] != status]
    if bad:
        raise RuntimeError(
            f"{what}: {len(bad)} answers were not {status}: {bad[0]['statusCode']} {body_of(bad[0])[:200]!r}"
        )


def measure_enroll(count: int, seconds: float, warmup: int, ref: Reference | None, runs: int) -> dict[str, Rate]:
    """New identities: every PUT carries a new key."""
    rec = Recorder()

    def fresh_enrolments(n: int) -> list[dict[str, Any]]:
        return [enroll_event(cr_of(new_key())) for _ in range(n)]

    return {
        "enroll": _measure(
            ref,
            "enroll",
            rec,
            fresh_enrolments,
            count=count,
            seconds=seconds,
            warmup=warmup,
            runs=runs,
            after=lambda inputs, done: _check_status(rec, done, "enroll"),
        )
    }


def measure_renew(count: int, seconds: float, warmup: int, ref: Reference | None, runs: int) -> dict[str, Rate]:
    """Real renewals: each PUT's identity holds a certificate inside the renewal window, and the
    answer must be a new certificate (not the "existing" short-cut)."""
    rec = Recorder()
    renewals: list[tuple[dict[str, Any], bytes]] = []

    def prepare(n: int) -> list[dict[str, Any]]:
        renewals[:] = seeded_for_renewal(n)
        return [event for event, _ in renewals]

    def renewed(inputs: Sequence[Any], done: int) -> None:
        for (_, old), r in zip(renewals, rec.take(done), strict=False):
            if r["statusCode"] != 200 or body_of(r) == old:
                raise RuntimeError(f"renew: not a renewal ({r['statusCode']}, same certificate: {body_of(r) == old})")

    return {
        "renew": _measure(
            ref, "enroll", rec, prepare, count=count, seconds=seconds, warmup=warmup, runs=runs, after=renewed
        )
    }


def measure_duplicate(count: int, seconds: float, warmup: int, ref: Reference | None, runs: int) -> dict[str, Rate]:
    """A second PUT of an identity whose certificate is current: answered from the identity item."""
    rec = Recorder()
    key = new_key()
    enroll_ok(cr_of(key))
    duplicate = enroll_event(cr_of(key))
    return {
        "duplicate": measure(
            rec,
            repeat(duplicate),
            count=count,
            seconds=seconds,
            warmup=warmup,
            runs=runs,
            after=lambda inputs, done: _check_status(rec, done, "duplicate"),
        )
    }


def measure_auth(count: int, seconds: float, warmup: int, ref: Reference | None, runs: int) -> dict[str, Rate]:
    """nginx_authenticate of valid certificates: inside the revocation-cache window (hit, no read)
    and with the window at 0 (miss: every request reads the identity item)."""
    rec = Recorder()
    out: dict[str, Rate] = {}
    pems = [_pem(enroll_ok(cr_of(new_key()))) for _ in range(AUTH_POOL)]
    events = [auth_event(p) for p in pems]
    # hit: a window longer than the runs, filled before them
    set_env(SEACAT_REVOCATION_CACHE_SECONDS="3600")
    try:
        for event in events:
            rec(event)
        _check_status(rec, len(events), "auth warm-up")
        with CALLS.window() as hit_calls:
            out["auth_hit"] = _measure(
                ref,
                "verify",
                rec,
                cycle(events),
                count=count,
                seconds=seconds,
                warmup=warmup,
                runs=runs,
                after=lambda inputs, done: _check_status(rec, done, "auth hit"),
            )
        out["auth_hit"].extra["aws_calls_in_runs"] = total(hit_calls)
        set_env(SEACAT_REVOCATION_CACHE_SECONDS="0")
        with CALLS.window() as miss_calls:
            out["auth_miss"] = _measure(
                ref,
                "verify",
                rec,
                cycle(events),
                count=count,
                seconds=seconds,
                warmup=warmup,
                runs=runs,
                after=lambda inputs, done: _check_status(rec, done, "auth miss"),
            )
        out["auth_miss"].extra["aws_calls_in_runs"] = total(miss_calls)
    finally:
        set_env(SEACAT_REVOCATION_CACHE_SECONDS=None)
    return out


def ok200(event: dict[str, Any]) -> None:
    r = invoke(event)
    if r["statusCode"] != 200:
        raise RuntimeError(f"{event['resource']}: {r['statusCode']} {body_of(r)[:200]!r}")


def _issued(result: Any) -> None:
    if result.outcome != "issued":
        raise RuntimeError(f"enroll: {result.outcome}")


def _allowed(verdict: Any) -> None:
    if verdict.status != 200:
        raise RuntimeError(f"authenticate: {verdict.status} {verdict.reason}")


def breakdown(count: int, seconds: float, ref: Reference, runs: int) -> dict[str, Rate]:
    """Where a request's time goes, without a profiler's distortion (in-memory store only), each
    against its raw reference in pairs: the services called directly (no Chalice); the handlers with
    the service's logs and metrics off; Chalice + the middleware on the cheapest route; and one JSON
    log line and one EMF metric alone."""
    import logging

    from chalicelib import observability
    from chalicelib.service import enrollment, gateway

    out: dict[str, Rate] = {}
    health = api_event("GET", "/health", {}, {"Accept": "application/json"})
    out["health"] = measure(ok200, repeat(health), count=count * 3, seconds=seconds)
    raw_enroll = (ref.enroll, cycle(ref.crs))
    raw_verify = (ref.verify, cycle(ref.pems))
    bounds: dict[str, Any] = {"count": count, "seconds": seconds, "runs": runs}
    out["service_enroll"] = measure_paired(
        lambda cr: _issued(enrollment.enroll(TENANT, cr)),
        lambda n: [cr_of(new_key()) for _ in range(n)],
        *raw_enroll,
        **bounds,
    )
    pems = [_pem(enroll_ok(cr_of(new_key()))) for _ in range(AUTH_POOL)]
    set_env(SEACAT_REVOCATION_CACHE_SECONDS="0")
    try:
        out["service_auth_miss"] = measure_paired(
            lambda pem: _allowed(gateway.authenticate(TENANT, pem, "SUCCESS")), cycle(pems), *raw_verify, **bounds
        )
        logger = logging.getLogger("seacat")
        level = logger.level
        logger.setLevel(logging.WARNING)  # the access log, audit log lines and EMF metrics off
        try:
            out["auth_miss_no_logs"] = measure_paired(
                ok200, cycle([auth_event(p) for p in pems]), *raw_verify, **bounds
            )
            out["enroll_no_logs"] = measure_paired(
                ok200, lambda n: [enroll_event(cr_of(new_key())) for _ in range(n)], *raw_enroll, **bounds
            )
            out["health_no_logs"] = measure(ok200, repeat(health), count=count * 3, seconds=seconds)
        finally:
            logger.setLevel(level)
    finally:
        set_env(SEACAT_REVOCATION_CACHE_SECONDS=None)
    # One access-log line (JSON formatter, request context bound) and one EMF metric line.
    access = logging.getLogger("seacat.access")
    token = observability.begin_request(request_id="bench", route=ENROLL, method="PUT", tenant=TENANT)
    try:
        out["log_line"] = measure(
            lambda _: access.info("request", extra={"status": 200, "outcome": "ok", "duration_ms": 1.25}),
            repeat(None),
            count=count * 10,
            seconds=seconds,
        )
        out["emf_metric"] = measure(
            lambda _: observability.metric("Enrolments", outcome="issued"),
            repeat(None),
            count=count * 10,
            seconds=seconds,
        )
    finally:
        observability.end_request(token)
    return out


METRICS = (measure_enroll, measure_renew, measure_duplicate, measure_auth)


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


# --- AWS calls per operation (moto) ----------------------------------------------------------------


def count_calls() -> dict[str, Any]:
    """Calls per operation in a warm container, and the first ones of a new container."""
    from chalicelib.service import tenants

    detail: dict[str, Any] = {}

    def per_op(label: str, make: Callable[[], dict[str, Any]], times: int = 5, status: int = 200) -> int:
        worst = 0
        seen: dict[str, int] = {}
        for _ in range(times):
            event = make()
            with CALLS.window() as delta:
                r = invoke(event)
            assert r["statusCode"] == status, (label, r["statusCode"], body_of(r))
            worst = max(worst, total(delta))
            seen = by_operation(delta)
        detail[label] = {"calls": worst, "by_operation": seen}
        return worst

    enroll_ok(cr_of(new_key()))  # tenant and key cached, clients created
    counts: dict[str, int] = {}
    counts["enroll_new"] = per_op("enroll_new", lambda: enroll_event(cr_of(new_key())))

    def expired_tenant() -> dict[str, Any]:
        tenants.forget_cached()  # as SEACAT_TENANT_CACHE_SECONDS running out does
        return enroll_event(cr_of(new_key()))

    refreshed = per_op("enroll_new_tenant_cache_expired", expired_tenant, times=2)
    counts["enroll_new"] = max(counts["enroll_new"], refreshed)

    seeds = iter(seeded_for_renewal(5))
    counts["enroll_renewal"] = per_op("enroll_renewal", lambda: next(seeds)[0])
    key = new_key()
    enroll_ok(cr_of(key))
    dup = cr_of(key)
    counts["enroll_duplicate"] = per_op("enroll_duplicate", lambda: enroll_event(dup))

    pem = _pem(enroll_ok(cr_of(new_key())))
    set_env(SEACAT_REVOCATION_CACHE_SECONDS="0")
    try:
        counts["auth_miss"] = per_op("auth_miss", lambda: auth_event(pem))
    finally:
        set_env(SEACAT_REVOCATION_CACHE_SECONDS=None)  # the default window (5 s)
    invoke(auth_event(pem))  # now cached
    counts["auth_hit"] = per_op("auth_hit", lambda: auth_event(pem))

    # A self-signed CA: an operator PUT on a tenant created in this container (key cached) ...
    create_tenant("bench-ca1", ca=False)
    with CALLS.window() as delta:
        r = admin("PUT", "/{tenant}/x509/self-signed", {"tenant": "bench-ca1"}, CA_SPEC)
    assert r["statusCode"] == 201, body_of(r)
    counts["self_signed"] = total(delta)
    detail["self_signed"] = {"calls": total(delta), "by_operation": by_operation(delta)}

    # ... and the first requests of a new container: what a cold start adds.
    create_tenant("bench-ca2", ca=False)
    reset_container()
    with CALLS.window() as delta:
        r = admin("PUT", "/{tenant}/x509/self-signed", {"tenant": "bench-ca2"}, CA_SPEC)
    assert r["statusCode"] == 201, body_of(r)
    detail["self_signed_new_container"] = {"calls": total(delta), "by_operation": by_operation(delta)}
    reset_container()
    with CALLS.window() as delta:
        enroll_ok(cr_of(new_key()))
    detail["enroll_new_first_in_container"] = {"calls": total(delta), "by_operation": by_operation(delta)}
    return {"counts": counts, "detail": detail}


# --- the two backends ---------------------------------------------------------------------------------


def _bootstrap() -> None:
    from chalicelib.service import tokens

    tokens.install_operator_token(TOKEN)
    create_tenant()


def run_memory(count: int, seconds: float, runs: int = 3) -> dict[str, Any]:
    """Every metric on one in-memory backend: no AWS client is ever created."""
    from chalicelib import context

    context.use_memory()
    reset_container()
    try:
        _bootstrap()
        rates: dict[str, Rate] = {}
        with CALLS.window() as calls:
            ref = Reference()
            for metric in METRICS:
                rates.update(metric(count, seconds, 20, ref, runs))
            rates.update(breakdown(count, seconds, ref, runs))
            client = client_overhead(seconds)
            profiles = profile()
        return {"rates": rates, "client": client, "profile": profiles, "aws_calls": total(calls)}
    finally:
        context.reset()
        reset_container()


@contextlib.contextmanager
def fresh_emulator() -> Iterator[None]:
    """moto in-process with the stage's tables and KMS key (infra/resources.yaml), a tenant and its
    CA, and a container that has made its first enrolment (key read, clients made)."""
    from moto import mock_aws

    from chalicelib import context
    from scripts.emulator import deploy_stack, item_level_rollback

    context.reset()
    item_level_rollback()  # the emulator as make run and the tests have it
    with mock_aws():
        reset_container()
        try:
            deploy_stack(STAGE)
            _bootstrap()
            enroll_ok(cr_of(new_key()))
            yield
        finally:
            reset_container()


def run_moto(count: int, seconds: float) -> dict[str, Any]:
    """Every metric on its own fresh moto: moto's TransactWriteItems deep-copies each table it
    touches (its rollback), so its cost grows with the items stored and a long run measures moto."""
    rates: dict[str, Rate] = {}
    after_first = 0
    in_runs: collections.Counter[tuple[str, str]] = collections.Counter()
    for metric in METRICS:
        with fresh_emulator(), CALLS.window() as calls:
            rates.update(metric(count, seconds, 5, None, 3))
        after_first += total(calls, ("secrets-manager", "kms"))
        in_runs.update(calls)
    with fresh_emulator():
        counted = count_calls()
    return {
        "rates": rates,
        "aws_calls": counted,
        "secrets_after_first": after_first,
        "calls_in_runs": by_operation(in_runs),
    }


def client_overhead(seconds: float) -> dict[str, Any]:
    """chalice.test.Client against a direct app(event, context), on the cheapest enrol (duplicate)."""
    from chalice.test import Client

    key = new_key()
    enroll_ok(cr_of(key))
    cr = cr_of(key)
    event = enroll_event(cr)
    direct = measure(invoke, repeat(event), count=2000, seconds=seconds)
    with Client(_app(), stage_name=STAGE, project_dir=str(ROOT)) as client:

        def via_client(_: object) -> None:
            r = client.http.put(f"/{TENANT}/seacat/enroll", headers=OCTET, body=cr)
            assert r.status_code == 200

        through = measure(via_client, repeat(None), count=2000, seconds=seconds)
    return {
        "duplicate_direct_per_s": round(direct.median, 1),
        "duplicate_client_per_s": round(through.median, 1),
        "client_overhead_us": round((1 / through.median - 1 / direct.median) * 1e6, 1),
    }


def profile(enrolments: int = 300, authentications: int = 600) -> dict[str, Any]:
    """cProfile of the handlers on the in-memory store: where a request's time goes."""
    out: dict[str, Any] = {}
    events = [enroll_event(cr_of(new_key())) for _ in range(enrolments)]
    out["enroll"] = _profiled(lambda: [invoke(e) for e in events], enrolments)
    pems = [_pem(enroll_ok(cr_of(new_key()))) for _ in range(AUTH_POOL)]
    auth = [auth_event(pems[i % AUTH_POOL]) for i in range(authentications)]
    set_env(SEACAT_REVOCATION_CACHE_SECONDS="0")
    try:
        out["auth_miss"] = _profiled(lambda: [invoke(e) for e in auth], authentications)
    finally:
        set_env(SEACAT_REVOCATION_CACHE_SECONDS=None)
    return out


def _profiled(work: Callable[[], object], ops: int, top: int = 15) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    work()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = _short(filename)
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls_per_op": round(calls / ops, 2),
                "self_us_per_op": round(tottime / ops * 1e6, 1),
                "cum_us_per_op": round(cumtime / ops * 1e6, 1),
            }
        )
    by_self = sorted(rows, key=lambda r: r["self_us_per_op"], reverse=True)[:top]
    by_cum = sorted(
        (r for r in rows if "bench/" not in r["function"] and "<listcomp>" not in r["function"]),
        key=lambda r: r["cum_us_per_op"],
        reverse=True,
    )[:top]
    total_us = sum(r["self_us_per_op"] for r in rows)
    return {"us_per_op": round(total_us, 1), "by_self_time": by_self, "by_cumulative_time": by_cum}


def _short(filename: str) -> str:
    text = filename.replace("\\", "/")
    if "site-packages/" in text:
        return text.split("site-packages/", 1)[1]
    stdlib = re.search(r"/lib/python3\.\d+/(.*)$", text)
    if stdlib:
        return stdlib.group(1)
    root = str(ROOT).replace("\\", "/") + "/"
    return text[len(root) :] if text.startswith(root) else text


def quiet_log_sink() -> Any:
    """The service logs JSON lines to stdout (CloudWatch on Lambda): here, to /dev/null."""
    import os

    return open(os.devnull, "w")


__all__ = ["run_memory", "run_moto", "say"]
