"""What every measurement shares: bounded timing loops, the stage environment, Lambda events,
the AWS call counter, and the service's per-container caches."""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STAGE = "local"  # the stage `make run` serves: the production cache settings (tenant cache 5 s)

# Nothing here may reach AWS: fake credentials before anything creates a client.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}


def say(text: str = "") -> None:
    """Progress and the table: always the real stdout (the service's JSON logs go elsewhere)."""
    out = sys.__stdout__
    assert out is not None
    out.write(text + "\n")
    out.flush()


def stage_environment(stage: str = STAGE) -> dict[str, str]:
    """The environment `chalice local` / Lambda give the app for ``stage`` (.chalice/config.json)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def isolate_environment() -> None:
    """Fake credentials, no profile, no endpoint: a stray call fails instead of reaching AWS."""
    os.environ.update(FAKE_AWS)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.update(stage_environment())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- bounded timing -------------------------------------------------------------------------------


@dataclass
class Rate:
    """Operations per second: the median of ``runs``, each bounded by a count and a time."""

    median: float
    runs: list[float]
    ops: list[int]
    seconds: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "per_s": round(self.median, 1),
            "runs_per_s": [round(r, 1) for r in self.runs],
            "ops": self.ops,
            "seconds": [round(s, 3) for s in self.seconds],
            **self.extra,
        }


# Paired measurements alternate blocks of this many operations of each side.
BLOCK = 20


def timed_loop(op: Callable[[Any], object], inputs: Sequence[Any], seconds: float) -> tuple[int, float]:
    """Run ``op`` over ``inputs`` until they are used up or ``seconds`` have passed: (done, elapsed)."""
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    done = 0
    for item in inputs:
        op(item)
        done += 1
        if clock() >= deadline:
            break
    return done, clock() - start


def measure(
    op: Callable[[Any], object],
    prepare: Callable[[int], Sequence[Any]],
    *,
    count: int,
    seconds: float,
    runs: int = 3,
    warmup: int = 20,
    after: Callable[[Sequence[Any], int], None] | None = None,
) -> Rate:
    """Warm up, then ``runs`` runs of min(``count`` ops, ``seconds``); ``prepare(n)`` makes the inputs
    of one run outside the timing, ``after(inputs, done)`` checks a run's results outside it too."""
    if warmup:
        timed_loop(op, prepare(warmup), seconds)
    rates, ops, elapsed = [], [], []
    for _ in range(runs):
        inputs = prepare(count)
        done, took = timed_loop(op, inputs, seconds)
        if after is not None:
            after(inputs, done)
        rates.append(done / took)
        ops.append(done)
        elapsed.append(took)
    return Rate(statistics.median(rates), rates, ops, elapsed)


def measure_paired(
    op: Callable[[Any], object],
    prepare: Callable[[int], Sequence[Any]],
    reference: Callable[[Any], object],
    reference_inputs: Callable[[int], Sequence[Any]],
    *,
    count: int,
    seconds: float,
    runs: int = 3,
    warmup: int = 20,
    after: Callable[[Sequence[Any], int], None] | None = None,
    block: int = BLOCK,
) -> Rate:
    """Like ``measure``, against ``reference`` (the raw limit it is compared with), interleaved:
    each run alternates a block of ``block`` reference operations with a block of ``op``, so both
    see the same load (on a shared machine it moves within a second). Each run does at most
    ``count`` of each, or stops once ``seconds`` of ``op`` time have passed. The ratio reported is
    the median of the runs' ratios (op rate / reference rate)."""
    if warmup:
        timed_loop(reference, reference_inputs(warmup), seconds)
        timed_loop(op, prepare(warmup), seconds)
    clock = time.perf_counter
    rates, refs, ratios, ops, elapsed = [], [], [], [], []
    for _ in range(runs):
        ref_inputs = reference_inputs(count)
        inputs = prepare(count)
        done = ref_done = 0
        took = ref_took = 0.0
        while done < len(inputs) and took < seconds:
            start = clock()
            for item in ref_inputs[ref_done : ref_done + block]:
                reference(item)
            middle = clock()
            for item in inputs[done : done + block]:
                op(item)
            end = clock()
            ref_done = min(ref_done + block, len(ref_inputs))
            done = min(done + block, len(inputs))
            ref_took += middle - start
            took += end - middle
        if after is not None:
            after(inputs, done)
        rates.append(done / took)
        refs.append(ref_done / ref_took)
        ratios.append(rates[-1] / refs[-1])
        ops.append(done)
        elapsed.append(took)
    return Rate(
        statistics.median(rates),
        rates,
        ops,
        elapsed,
        extra={
            "paired_raw_per_s": round(statistics.median(refs), 1),
            "paired_raw_runs_per_s": [round(r, 1) for r in refs],
            "paired_ratio": round(statistics.median(ratios), 3),
            "paired_ratio_runs": [round(r, 3) for r in ratios],
            "interleaved_block": block,
        },
    )


def repeat(value: Any) -> Callable[[int], list[Any]]:
    return lambda n: [value] * n


def cycle(values: Sequence[Any]) -> Callable[[int], list[Any]]:
    return lambda n: [values[i % len(values)] for i in range(n)]


# --- Lambda events ----------------------------------------------------------------------------------

_request_ids = iter(range(1, 1 << 62))


def api_event(
    method: str, resource: str, params: dict[str, str], headers: dict[str, str] | None = None, body: bytes | None = None
) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event as Lambda hands it to the app. The stage declares every
    media type binary, so API Gateway passes every body base64-encoded."""
    path = resource.format(**params)
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": lower,
        "multiValueHeaders": {k: [v] for k, v in lower.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "requestId": f"bench-{next(_request_ids)}",
            "identity": {"sourceIp": HOST},
        },
        "body": base64.b64encode(body).decode("ascii") if body is not None else None,
        "isBase64Encoded": body is not None,
    }


class LambdaContext:
    """The attributes of Lambda's context object the app (and Chalice) may read."""

    function_name = "seacat-pki-bench"
    function_version = "$LATEST"
    invoked_function_arn = ""
    memory_limit_in_mb = 1024
    aws_request_id = "bench"
    log_group_name = ""
    log_stream_name = ""
    identity = None
    client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


CONTEXT = LambdaContext()


def body_of(response: dict[str, Any]) -> bytes:
    raw = response.get("body") or ""
    return base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")


# --- AWS calls, counted with botocore's event hooks ------------------------------------------------


class AwsCalls:
    """Counts every API call of every botocore client created after ``install`` (boto3's and
    pynamodb's alike), per (service, operation), from botocore's ``before-call`` event."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        from botocore.session import Session

        original = Session.create_client
        counter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", counter._count)
            return client

        Session.create_client = create_client
        self._installed = True

    def _count(self, event_name: str = "", **kwargs: Any) -> None:
        # before-call.<service id>.<Operation>: once per API call (retries are not counted again)
        _event, service, operation = event_name.split(".", 2)
        with self._lock:
            self.counts[(service, operation)] += 1

    def snapshot(self) -> collections.Counter[tuple[str, str]]:
        with self._lock:
            return collections.Counter(self.counts)

    @contextlib.contextmanager
    def window(self) -> Iterator[collections.Counter[tuple[str, str]]]:
        """The calls made inside the ``with`` block (filled in on exit)."""
        delta: collections.Counter[tuple[str, str]] = collections.Counter()
        before = self.snapshot()
        try:
            yield delta
        finally:
            delta.update(self.snapshot() - before)


CALLS = AwsCalls()


def by_operation(delta: collections.Counter[tuple[str, str]]) -> dict[str, int]:
    return {f"{service}:{operation}": n for (service, operation), n in sorted(delta.items())}


def total(delta: collections.Counter[tuple[str, str]], services: tuple[str, ...] | None = None) -> int:
    return sum(n for (service, _), n in delta.items() if services is None or service in services)


# --- the service's per-container state ----------------------------------------------------------------


def reset_container() -> None:
    """Forget everything a Lambda container keeps between requests (clients, caches, settings), as a
    new container would; the installed context (in-memory or AWS) stays, with empty caches."""
    from chalicelib import aws, context
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    aws.reset()
    if "chalicelib.store.common" in sys.modules:  # only once the DynamoDB adapter was used
        sys.modules["chalicelib.store.common"].reset()
    context.current().caches.clear()


def set_env(**values: str | None) -> None:
    """Change the service's environment (settings are read once: the cache is cleared)."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from chalicelib.settings import get_settings

    get_settings.cache_clear()


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
