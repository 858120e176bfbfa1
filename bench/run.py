"""`make bench`: every figure of docs/performance.md, measured in one run, with its budget.

    python -m bench.run            # the table on stdout, bench/results.json beside this file

A missed budget is printed as FAIL and recorded in the results; the exit status stays 0 (the
figures are what matters). Exit status 1 only when a measurement itself could not be made.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.common import CALLS, ROOT, isolate_environment, load_average, say

RESULTS = ROOT / "bench" / "results.json"

# Bounds of each measurement loop: min(count, seconds) per run, median of 3 runs after a warm-up.
MEMORY_COUNT, MEMORY_SECONDS, MEMORY_RUNS = 600, 1.0, 5
MOTO_COUNT, MOTO_SECONDS = 40, 3.0

BUDGET_RATIO = 0.5
BUDGET_COLD_START_MS = 600.0
BUDGET_IMPORT_MS = 200.0


def _phase(name: str, errors: dict[str, str], work: Callable[[], Any]) -> Any:
    say(f"[{time.strftime('%H:%M:%S')}] {name} ...")
    started = time.monotonic()
    try:
        result = work()
    except Exception as exc:  # record it, go on with the other phases
        errors[name] = f"{type(exc).__name__}: {exc}"
        say(f"  ERROR in {name}: {errors[name]}")
        traceback.print_exc(file=sys.__stderr__)
        return None
    say(f"  ({time.monotonic() - started:.0f} s)")
    return result


def _machine() -> dict[str, Any]:
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "platform": platform.platform(),
    }


def _r(rate: Any) -> float | None:
    return round(rate.median, 1) if rate is not None else None


def _ratio(value: float | None, limit: float | None) -> float | None:
    return round(value / limit, 3) if value and limit else None


def main() -> int:
    isolate_environment()
    CALLS.install()  # before anything creates a botocore client
    sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    errors: dict[str, str] = {}
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load_average(),
        "machine": _machine(),
    }
    say(f"make bench: load average at start {results['load_average_at_start']} on {results['machine']['cpus']} CPUs")

    from bench import cold, httpcmp, inproc, raw

    raw_rates = _phase("raw cryptography limits (one core)", errors, raw.run) or {}
    # The service logs JSON lines to stdout; while the handlers run, they go to /dev/null.
    sink = inproc.quiet_log_sink()
    with contextlib.redirect_stdout(sink):
        memory = (
            _phase(
                "handlers, in-memory store (context.use_memory)",
                errors,
                lambda: inproc.run_memory(MEMORY_COUNT, MEMORY_SECONDS, MEMORY_RUNS),
            )
            or {}
        )
        moto = (
            _phase("handlers, moto in-process (mock_aws)", errors, lambda: inproc.run_moto(MOTO_COUNT, MOTO_SECONDS))
            or {}
        )
        started_cold = _phase("import time and cold start", errors, cold.run) or {}
    http = _phase("HTTP side by side: CFSSL and make run's stack", errors, httpcmp.run) or {}

    raw_cr = _r(raw_rates.get("cr_verify"))
    raw_sign = _r(raw_rates.get("cert_sign"))
    raw_verify = _r(raw_rates.get("cert_verify"))
    raw_enroll = round(1 / (1 / raw_cr + 1 / raw_sign), 1) if raw_cr and raw_sign else None
    mem = memory.get("rates", {})
    mot = moto.get("rates", {})
    results.update(
        {
            "raw_cr_verify_per_s": raw_cr,
            "raw_ecdsa_verify_per_s": _r(raw_rates.get("ecdsa_verify")),
            "raw_cert_sign_per_s": raw_sign,
            "raw_cert_verify_per_s": raw_verify,
            "raw_enroll_limit_per_s": raw_enroll,
            "enroll_per_s": _r(mem.get("enroll")),
            "renew_per_s": _r(mem.get("renew")),
            "enroll_duplicate_per_s": _r(mem.get("duplicate")),
            "auth_hit_per_s": _r(mem.get("auth_hit")),
            "auth_miss_per_s": _r(mem.get("auth_miss")),
            "enroll_per_s_moto": _r(mot.get("enroll")),
            "renew_per_s_moto": _r(mot.get("renew")),
            "enroll_duplicate_per_s_moto": _r(mot.get("duplicate")),
            "auth_hit_per_s_moto": _r(mot.get("auth_hit")),
            "auth_miss_per_s_moto": _r(mot.get("auth_miss")),
        }
    )
    # In-memory ratios are paired: each handler run interleaved, block by block, with a run of its
    # raw reference (the load of this machine moves within a second); moto's against the raw phase's.
    for name, key, limit in (
        ("enroll", "enroll", raw_enroll),
        ("renew", "renew", raw_enroll),
        ("auth_hit", "auth_hit", raw_verify),
        ("auth_miss", "auth_miss", raw_verify),
    ):
        paired = mem.get(key).extra.get("paired_ratio") if mem.get(key) is not None else None
        results[f"{name}_ratio"] = paired
        results[f"{name}_ratio_unpaired"] = _ratio(results[f"{name}_per_s"], limit)
        results[f"{name}_ratio_moto"] = _ratio(results[f"{name}_per_s_moto"], limit)

    counted = moto.get("aws_calls", {})
    counts = counted.get("counts", {})
    results["aws_calls"] = {
        "enroll_new": counts.get("enroll_new"),
        "enroll_renewal": counts.get("enroll_renewal"),
        "auth_miss": counts.get("auth_miss"),
        "auth_hit": counts.get("auth_hit"),
        "self_signed": counts.get("self_signed"),
        "secrets_after_first": moto.get("secrets_after_first"),
    }
    results["aws_calls_detail"] = {
        **counted.get("detail", {}),
        "in_the_moto_runs": moto.get("calls_in_runs"),
        "in_the_memory_runs": memory.get("aws_calls"),
    }
    imports = started_cold.get("import", {})
    cold_start = started_cold.get("cold_start", {})
    results["cold_start_ms"] = cold_start.get("ms")
    results["import_app_ms"] = imports.get("ms")
    results["cfssl_http_per_s"] = http.get("cfssl", {}).get("per_s")
    results["ours_http_per_s"] = http.get("ours", {}).get("per_s")
    if results["cfssl_http_per_s"] is None and http:
        results["cfssl_http_reason"] = http.get("cfssl", {}).get("reason")

    results["budgets"] = budgets(results)
    results["details"] = {
        "raw": {k: v.json() for k, v in raw_rates.items()},
        "memory": {k: v.json() for k, v in mem.items()},
        "moto": {k: v.json() for k, v in mot.items()},
        "handler_invocation": "app(event, context) with API Gateway proxy events, as Lambda calls it; "
        "chalice.test.Client costs client_overhead_us more per request",
        "client": memory.get("client"),
        "profile_memory": memory.get("profile"),
        "import": imports,
        "cold_start": cold_start,
        "http": http,
        "bounds": {
            "raw": f"min({raw.COUNT} ops, {raw.SECONDS} s) per run",
            "memory": f"min({MEMORY_COUNT} ops, {MEMORY_SECONDS} s) per run, {MEMORY_RUNS} runs, each after a run of "
            "its raw reference",
            "moto": f"min({MOTO_COUNT} ops, {MOTO_SECONDS} s) per run, a fresh emulator per metric",
            "runs": "median of the runs (3 unless said) after a warm-up",
        },
    }
    results["errors"] = errors
    results["load_average_at_end"] = load_average()
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table(results)
    say(f"\nwritten: {RESULTS.relative_to(ROOT)} ({results['bench_seconds']:.0f} s)")
    return 1 if errors else 0


def budgets(r: dict[str, Any]) -> dict[str, Any]:
    calls = r["aws_calls"]

    def at_least(value: float | None, floor: float) -> bool | None:
        return None if value is None else value >= floor

    def at_most(value: float | None, ceiling: float) -> bool | None:
        return None if value is None else value <= ceiling

    rows = {
        "enroll_vs_raw": (
            "enroll (in-memory) >= 0.5 x raw (CR verify + cert sign)",
            r["enroll_ratio"],
            at_least(r["enroll_ratio"], BUDGET_RATIO),
        ),
        "renew_vs_raw": (
            "renewal (in-memory) >= 0.5 x raw (CR verify + cert sign)",
            r["renew_ratio"],
            at_least(r["renew_ratio"], BUDGET_RATIO),
        ),
        "auth_hit_vs_raw": (
            "nginx_authenticate hit (in-memory) >= 0.5 x raw PEM parse + verify",
            r["auth_hit_ratio"],
            at_least(r["auth_hit_ratio"], BUDGET_RATIO),
        ),
        "auth_miss_vs_raw": (
            "nginx_authenticate miss (in-memory) >= 0.5 x raw PEM parse + verify",
            r["auth_miss_ratio"],
            at_least(r["auth_miss_ratio"], BUDGET_RATIO),
        ),
        "aws_enroll_new": ("AWS calls per new enrolment <= 3", calls["enroll_new"], at_most(calls["enroll_new"], 3)),
        "aws_enroll_renewal": (
            "AWS calls per renewal <= 3",
            calls["enroll_renewal"],
            at_most(calls["enroll_renewal"], 3),
        ),
        "aws_auth_miss": (
            "AWS calls per nginx_authenticate miss <= 1",
            calls["auth_miss"],
            at_most(calls["auth_miss"], 1),
        ),
        "aws_auth_hit": ("AWS calls per nginx_authenticate hit = 0", calls["auth_hit"], at_most(calls["auth_hit"], 0)),
        "aws_secrets_after_first": (
            "Secrets Manager/KMS calls after the first per container = 0",
            calls["secrets_after_first"],
            at_most(calls["secrets_after_first"], 0),
        ),
        "cold_start": (
            "cold start to first enrolment <= 600 ms",
            r["cold_start_ms"],
            at_most(r["cold_start_ms"], BUDGET_COLD_START_MS),
        ),
        "import_app": ("import app <= 200 ms", r["import_app_ms"], at_most(r["import_app_ms"], BUDGET_IMPORT_MS)),
    }
    return {
        key: {
            "budget": text,
            "measured": value,
            "pass": ok,
            "verdict": "PASS" if ok else ("FAIL" if ok is False else "NOT MEASURED"),
        }
        for key, (text, value, ok) in rows.items()
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}" if value < 1 else f"{value:.1f}"
    else:
        text = str(value)
    return text + unit


def _where(r: dict[str, Any]) -> None:
    """Where a request's time goes (in-memory): each step's cost per request and, where it has a raw
    reference, its paired ratio to it."""
    raw = r["details"].get("raw", {})
    mem = r["details"].get("memory", {})
    if not mem:
        return

    def us(rate: dict[str, Any] | None) -> str:
        return f"{1e6 / rate['per_s']:,.0f} us" if rate and rate.get("per_s") else "-"

    def line(label: str, rate: dict[str, Any] | None, ratio: bool = True) -> None:
        shown = _fmt(rate.get("paired_ratio")) if (rate and ratio) else ""
        say(f"  {label:<58} {us(rate):>9} {shown:>6}")

    say("")
    say("Where the time goes (in-memory; per request; paired ratio to the raw reference)")
    line("raw: CR verify + leaf sign, one loop", {"per_s": (mem.get("enroll") or {}).get("paired_raw_per_s")}, False)
    line("enrollment.enroll() alone (no Chalice, logs on)", mem.get("service_enroll"))
    line("PUT enroll handler, logs and metrics off", mem.get("enroll_no_logs"))
    line("PUT enroll handler", mem.get("enroll"))
    line(
        "raw: PEM parse + verify_directly_issued_by",
        {"per_s": (mem.get("auth_miss") or {}).get("paired_raw_per_s")},
        False,
    )
    line("PEM parse + x509.verification path validation (gateway's)", raw.get("path_validation"))
    line("gateway.authenticate() alone (no Chalice, logs on)", mem.get("service_auth_miss"))
    line("nginx_authenticate handler, miss, logs and metrics off", mem.get("auth_miss_no_logs"))
    line("nginx_authenticate handler, miss", mem.get("auth_miss"))
    line("Chalice + middleware: GET /health, logs off", mem.get("health_no_logs"), False)
    line("Chalice + middleware: GET /health (one access-log line)", mem.get("health"), False)
    line("one JSON log line (the access line: one per request)", mem.get("log_line"), False)
    line("EMF metric fields (on the access line inside a request)", mem.get("emf_metric"), False)
    profile = r["details"].get("profile_memory") or {}
    for name in ("enroll", "auth_miss"):
        rows = (profile.get(name) or {}).get("by_self_time", [])[:6]
        if rows:
            say(f"  cProfile, {name}, top self time (us per request, inflated by the profiler):")
            for row in rows:
                say(f"    {row['self_us_per_op']:>7.1f}  {row['function'][:90]}")


def table(r: dict[str, Any]) -> None:
    say("")
    say(f"Raw limits, cryptography {r['machine']['cryptography']}, one core (ops/s)")
    for label, key in (
        ("SeaCat CR parse + verify (decode_cr)", "raw_cr_verify_per_s"),
        ("  ECDSA P-256 verify alone (reference)", "raw_ecdsa_verify_per_s"),
        ("leaf certificate build + sign", "raw_cert_sign_per_s"),
        ("PEM certificate parse + verify", "raw_cert_verify_per_s"),
        ("enrol limit 1/(1/CR verify + 1/sign)", "raw_enroll_limit_per_s"),
    ):
        say(f"  {label:<44} {_fmt(r.get(key)):>10}")
    say("")
    say("Handlers, app(event, context), one at a time   in-memory   ratio      moto   ratio")
    for label, key in (
        ("enroll, new identity", "enroll"),
        ("enroll, renewal", "renew"),
        ("enroll, duplicate (existing cert)", "enroll_duplicate"),
        ("nginx_authenticate, cache hit", "auth_hit"),
        ("nginx_authenticate, miss (window 0)", "auth_miss"),
    ):
        ratio = r.get(f"{key}_ratio")
        ratio_moto = r.get(f"{key}_ratio_moto")
        say(
            f"  {label:<44} {_fmt(r.get(f'{key}_per_s')):>9} {_fmt(ratio):>7} {_fmt(r.get(f'{key}_per_s_moto')):>9} {_fmt(ratio_moto):>7}"
        )
    say("  (ratios: enrol vs the enrol limit, nginx_authenticate vs PEM parse + verify; in-memory ratios are")
    say("   paired: each run interleaved, 20 operations at a time, with a run of the raw operation)")
    _where(r)
    say("")
    say(
        "AWS calls per operation (warm container, moto): "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in r["aws_calls"].items())
    )
    say(
        f"Cold start to first enrolment: {_fmt(r['cold_start_ms'], ' ms')}; import app: {_fmt(r['import_app_ms'], ' ms')}"
    )
    http = r["details"].get("http") or {}
    for name in ("cfssl", "ours"):
        side = http.get(name) or {}
        if side.get("per_s") is None:
            say(f"HTTP {name}: not measured ({side.get('reason', 'phase failed')})")
        else:
            say(
                f"HTTP {name}: {_fmt(side['per_s'])} certificates/s, p50 {side['p50_ms']} ms, p95 {side['p95_ms']} ms "
                f"({side['ok']} ok, {side['failed']} failed)"
            )
    if http:
        say(f"  ({http.get('note')}; {http.get('client')})")
    say("")
    say("Budgets")
    for row in r["budgets"].values():
        say(f"  {row['verdict']:<5} {row['budget']:<66} measured {_fmt(row['measured'])}")
    failed = [k for k, row in r["budgets"].items() if row["pass"] is False]
    if failed:
        say(
            f"\nFAIL: {len(failed)} budget(s) missed: {', '.join(failed)} (recorded in results.json; exit status stays 0)"
        )
    if r["errors"]:
        say(f"\nERRORS: {r['errors']}")


if __name__ == "__main__":
    sys.exit(main())
