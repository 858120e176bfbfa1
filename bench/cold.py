"""Cold start: a new Python process, ``import app``, and its first enrolment answered, against an
already running emulator (moto in server mode on 127.0.0.1, the stage deployed, a tenant and its
CA created); and the import time of ``app`` alone, with what it is made of.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import FAKE_AWS, HOST, ROOT, STAGE, free_port, reset_container, say, stage_environment

RUNS = 3
TIMEOUT = 60

# The child: what a Lambda runtime does for the first request of a new container. Prints one JSON
# line: its own clock at start, after `import app`, and after the answer.
_CHILD = r"""
import time
t0 = time.perf_counter(); w0 = time.time()
import base64, json, os, sys
import app as module
t1 = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
class Context:
    function_name = "seacat-pki-bench"; function_version = "$LATEST"; invoked_function_arn = ""
    memory_limit_in_mb = 1024; aws_request_id = "cold"; log_group_name = ""; log_stream_name = ""
    identity = None; client_context = None
    def get_remaining_time_in_millis(self): return 29000
before = set(sys.modules)
profile = None
if os.environ.get("BENCH_PROFILE"):
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
answer = module.app(event, Context())
t2 = time.perf_counter()
summary = {"wall_start": w0, "import_s": t1 - t0, "first_enroll_s": t2 - t1, "status": answer["statusCode"],
           "modules": len(sys.modules), "new_modules": len(set(sys.modules) - before)}
if profile is not None:
    profile.disable()
    import pstats
    stats = pstats.Stats(profile).stats
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.items():
        rows.append((cumtime, tottime, calls, filename, line, name))
    def cum(pattern):
        return round(max([r[0] for r in rows if pattern in "%s:%s" % (r[3], r[5])] or [0]) * 1000, 1)
    def calls(pattern):
        return sum(r[2] for r in rows if pattern in "%s:%s" % (r[3], r[5]))
    import gc
    import botocore.client, botocore.session
    alive = gc.get_objects()
    clients = {}
    for obj in alive:
        if isinstance(obj, botocore.client.BaseClient):
            name = obj.meta.service_model.service_name
            clients[name] = clients.get(name, 0) + 1
    summary["profile"] = {
        "botocore_sessions": sum(1 for obj in alive if isinstance(obj, botocore.session.Session)),
        "clients_by_service": clients,
        "clients_created": calls("botocore/session.py:create_client"),
        "service_models_loaded": calls("botocore/loaders.py:load_service_model"),
        "imports_ms": cum("_find_and_load"),
        "create_client_ms": cum("botocore/session.py:create_client"),
        "api_calls_ms": cum("botocore/client.py:_make_api_call"),
        "top": [{"function": "%s:%s(%s)" % (f, l, n), "cumulative_ms": round(c * 1000, 1), "self_ms": round(t * 1000, 1),
                 "calls": k} for c, t, k, f, l, n in sorted(rows, reverse=True)[:40]],
    }
sys.stdout.flush()
os.write(1, (json.dumps(summary) + "\n").encode())
"""


def _child_env(endpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_", "PYTHON"))}
    env.update(FAKE_AWS)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(stage_environment())
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def _spawn(env: dict[str, str], flags: tuple[str, ...] = ()) -> dict[str, Any]:
    started_wall = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *flags, "-c", _CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = b""
        for raw in proc.stdout:  # the service's JSON logs come first; the child's summary last
            if raw.startswith(b'{"wall_start"'):
                line = raw
                break
        answered = time.perf_counter() - started
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if not line:
        raise RuntimeError(f"the cold-start child gave no answer (exit {proc.returncode}): {err[-2000:]}")
    child = json.loads(line)
    if child["status"] != 200:
        raise RuntimeError(f"the cold-start enrolment answered {child['status']}")
    return {
        "ms": answered * 1000,
        "interpreter_start_ms": (child["wall_start"] - started_wall) * 1000,
        "import_app_ms": child["import_s"] * 1000,
        "first_enroll_ms": child["first_enroll_s"] * 1000,
        "modules": child["modules"],
        "modules_imported_by_first_enroll": child["new_modules"],
        "profile": child.get("profile"),
        "stderr": err,
    }


def cold_start() -> dict[str, Any]:
    import logging

    from moto.server import ThreadedMotoServer

    from bench import inproc
    from chalicelib import context
    from scripts.emulator import deploy_stack

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator call is noise
    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    endpoint = f"http://{HOST}:{port}"
    saved = os.environ.get("AWS_ENDPOINT_URL")
    try:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        context.reset()
        reset_container()
        deploy_stack(STAGE, endpoint)
        from chalicelib.service import tokens

        tokens.install_operator_token(inproc.TOKEN)
        inproc.create_tenant()
        inproc.enroll_ok(inproc.cr_of(inproc.new_key()))  # the stack works before we time anything
        env = _child_env(endpoint)
        runs = []
        for index in range(RUNS + 1):  # the first warms the page cache and is not counted
            event = inproc.enroll_event(inproc.cr_of(inproc.new_key()))
            env["BENCH_EVENT"] = json.dumps(event)
            result = _spawn(env)
            if index:
                result.pop("profile", None)
                result.pop("stderr", None)
                runs.append(result)
        diagnosis = _diagnose(env)
        diagnosis["no_bytecode"] = _without_bytecode(env)
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
        reset_container()
        server.stop()
    median = statistics.median(r["ms"] for r in runs)
    return {
        "ms": round(median, 1),
        "runs": [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
        "diagnosis": diagnosis,
        "how": "new `python -c` process: import app, one enrol through app(event, context) with "
        "AWS_ENDPOINT_URL at moto in server mode on 127.0.0.1 (tenant, CA and tables already there); "
        "wall time from Popen to the answer, median of 3 after one warm-up",
    }


def _diagnose(env: dict[str, str]) -> dict[str, Any]:
    """Where the first enrolment's time goes: cProfile of it in one more child, and -X importtime
    of another (what it imports lazily, by top-level package)."""
    from bench import inproc

    env = dict(env)
    env["BENCH_EVENT"] = json.dumps(inproc.enroll_event(inproc.cr_of(inproc.new_key())))
    env["BENCH_PROFILE"] = "1"
    profiled = _spawn(env)
    profile = profiled["profile"] or {}
    keep = [row for row in profile.get("top", []) if "<string>" not in row["function"]]
    env.pop("BENCH_PROFILE")
    env["BENCH_EVENT"] = json.dumps(inproc.enroll_event(inproc.cr_of(inproc.new_key())))
    traced = _spawn(env, ("-X", "importtime"))
    entries = _import_entries(traced["stderr"])
    app_at = next((i for i, e in enumerate(entries) if e[1] == "app" and e[0] == 0), len(entries))
    lazy = entries[app_at + 1 :]
    return {
        "profiled_first_enroll_ms": round(profiled["first_enroll_ms"], 1),
        "botocore_sessions": profile.get("botocore_sessions"),
        "clients_created": profile.get("clients_created"),
        "clients_by_service": profile.get("clients_by_service"),
        "service_models_loaded": profile.get("service_models_loaded"),
        "imports_ms": profile.get("imports_ms"),
        "create_client_ms": profile.get("create_client_ms"),
        "api_calls_ms": profile.get("api_calls_ms"),
        "top_functions": [_shorten(row) for row in keep[:25]],
        "client_creation": client_costs(),
        "lazy_import_ms": round(sum(cum for depth, _, _, cum in lazy if depth == 0) / 1000, 1),
        "lazy_top_packages": _top_packages(lazy, top=8),
        "lazy_outermost_imports": [
            {"module": name, "cumulative_ms": round(cum / 1000, 1)}
            for depth, name, _, cum in sorted((e for e in lazy if e[0] == 0), key=lambda e: e[3], reverse=True)[:8]
        ],
        "how": "cProfile around app(event, context) in a new child; imports after `import app` from -X importtime "
        "(which inflates import times)",
    }


def _without_bytecode(env: dict[str, str]) -> dict[str, Any]:
    """One cold start with no .pyc to read (an empty PYTHONPYCACHEPREFIX, nothing written): every
    module compiled from source, as in a Lambda zip that carries no bytecode."""
    import tempfile

    from bench import inproc

    with tempfile.TemporaryDirectory(prefix="seacat-bench-pycache-") as empty:
        env = dict(env, PYTHONPYCACHEPREFIX=empty, PYTHONDONTWRITEBYTECODE="1")
        env["BENCH_EVENT"] = json.dumps(inproc.enroll_event(inproc.cr_of(inproc.new_key())))
        run = _spawn(env)
    return {k: round(v, 1) for k, v in run.items() if k in ("ms", "import_app_ms", "first_enroll_ms")}


def client_costs() -> dict[str, float]:
    """What one botocore client costs to make, in this (warm) process: a new session loads the
    service's JSON model again; a second client of the same session reuses it. No call is made."""
    import boto3
    import botocore.session

    endpoint = f"http://{HOST}:9"  # never contacted: creating a client makes no request

    def ms(make: Any) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            make()
            runs.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(runs), 1)

    session = botocore.session.get_session()
    session.create_client("dynamodb", "eu-west-1", endpoint_url=endpoint)
    return {
        "new_session_dynamodb_client_ms": ms(
            lambda: botocore.session.get_session().create_client("dynamodb", "eu-west-1", endpoint_url=endpoint)
        ),
        "same_session_dynamodb_client_ms": ms(
            lambda: session.create_client("dynamodb", "eu-west-1", endpoint_url=endpoint)
        ),
        "new_boto3_session_secretsmanager_client_ms": ms(
            lambda: boto3.session.Session().client("secretsmanager", region_name="eu-west-1", endpoint_url=endpoint)
        ),
    }


def _shorten(row: dict[str, Any]) -> dict[str, Any]:
    text = str(row["function"]).replace("\\", "/")
    if "site-packages/" in text:
        text = text.split("site-packages/", 1)[1]
    else:
        text = re.sub(r"^.*/lib/python3\.\d+/", "", text)
        root = str(ROOT) + "/"
        text = text.replace(root, "")
    return {**row, "function": text}


def _import_entries(stderr: str) -> list[tuple[int, str, int, int]]:
    """(depth, module, self µs, cumulative µs) of every -X importtime line, in printed order."""
    entries = []
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            entries.append((len(m.group(3)) // 2, m.group(4), int(m.group(1)), int(m.group(2))))
    return entries


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def import_time() -> dict[str, Any]:
    """``import app``: wall time in a new process (median of 3), and -X importtime's breakdown."""
    env = _child_env(None)
    code = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    walls = []
    for index in range(RUNS + 1):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True
        )
        if index:
            walls.append(float(out.stdout.strip().splitlines()[-1]))
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    entries = _import_entries(traced.stderr)
    app_us = next((cum for depth, name, _, cum in entries if name == "app" and depth == 0), None)
    return {
        "ms": round(statistics.median(walls), 1),
        "runs_ms": [round(w, 1) for w in walls],
        "importtime_app_ms": round(app_us / 1000, 1) if app_us is not None else None,
        "top_packages": _top_packages(entries),
        "top_modules": [
            {"module": name, "cumulative_ms": round(cum / 1000, 1), "self_ms": round(own / 1000, 1)}
            for _, name, own, cum in sorted(entries, key=lambda e: e[2], reverse=True)[:10]
        ],
        "how": "`python -c 'import app'` timed inside the process (median of 3 after one warm-up); "
        "breakdown from `python -X importtime -c 'import app'`",
    }


def _top_packages(entries: list[tuple[int, str, int, int]], top: int = 5) -> list[dict[str, Any]]:
    """Cumulative import time per top-level package: the sum of its outermost imports (an import of
    the package nested inside another import of the same package is already counted)."""
    # -X importtime prints a module after its children: walk backwards to know each one's parents.
    totals: dict[str, int] = {}
    own: dict[str, int] = {}
    stack: list[tuple[int, str]] = []  # (depth, top-level package) of the enclosing imports
    for depth, name, self_us, cum_us in reversed(entries):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        package = name.split(".", 1)[0]
        if package != "app" and all(p != package for _, p in stack):
            totals[package] = totals.get(package, 0) + cum_us
        own[package] = own.get(package, 0) + self_us
        stack.append((depth, package))
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [
        {"package": p, "cumulative_ms": round(us / 1000, 1), "self_ms": round(own[p] / 1000, 1)} for p, us in ranked
    ]


def run() -> dict[str, Any]:
    say("  import time of app ...")
    imports = import_time()
    say("  cold start against moto in server mode ...")
    return {"import": imports, "cold_start": cold_start()}


__all__ = ["run"]
