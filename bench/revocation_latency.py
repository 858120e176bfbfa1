"""Revocation latency through the gateway, per mode: from the revoke call returning to the first request
the gateway refuses (docs/gateway.md, "How fast a revocation takes effect").

    python -m bench.revocation_latency                 # the rendered defaults and the OCSP modes (~2 min)
    python -m bench.revocation_latency --reference     # also the reference's 360 s auth cache (~7 min more)

Everything on 127.0.0.1: `make run`'s stack (SEACAT_REVOCATION_CACHE_SECONDS as given, 0 by default as
make run has it), an echo upstream, Debian's NGINX rendered by `python -m scripts.gateway render`. Per
mode: a device enrols through the gateway, makes one request (200: the gateway's caches now hold it),
is revoked, and then asks again every POLL seconds over a new TLS connection (a full handshake, no
resumption) until refused or LIMIT seconds. Prints one line per mode and writes JSON beside this file.
A figure, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "revocation_latency.json"
POLL = 0.25


def modes(reference: bool) -> list[tuple[str, list[str]]]:
    found = [
        ("rendered defaults (auth_request, 5 s auth cache)", []),
        ("--ocsp, ssl_ocsp_cache (auth cache 360 s: OCSP alone)", ["--ocsp", "--auth-cache-valid", "360s"]),
        (
            "--ocsp --no-ocsp-cache (auth cache 360 s: OCSP alone)",
            ["--ocsp", "--no-ocsp-cache", "--auth-cache-valid", "360s"],
        ),
        ("--ocsp with the default 5 s auth cache", ["--ocsp"]),
    ]
    if reference:
        found.append(("reference config (auth_request, 360 s auth cache)", ["--auth-cache-valid", "360s"]))
    return found


def measure(pki: Any, tenant: str, out: Path, extra: list[str], limit: float) -> dict[str, Any]:
    from tests.e2e.conftest import revoke
    from tests.e2e.test_gateway import enroll, start_gateway, start_upstream, stop_process, stop_upstream

    upstream = start_upstream()
    try:
        gateway = start_gateway(pki, tenant, out, upstream, *extra)
        try:
            state = out / "device"
            enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
            status, _, _ = gateway.request("/protected", device=state)
            assert status == 200, status
            revoke(pki, tenant, (state / "seacat_cert.der").read_bytes())
            revoked = time.monotonic()
            deadline = revoked + limit
            passed = 0
            while time.monotonic() < deadline:
                status, _, _ = gateway.request("/protected", device=state)
                if status != 200:
                    return {"seconds": round(time.monotonic() - revoked, 2), "refused_with": status, "passed": passed}
                passed += 1
                time.sleep(POLL)  # the polling interval of the measurement, not a wait for readiness
            return {"seconds": None, "refused_with": None, "passed": passed, "limit": limit}
        finally:
            stop_process(gateway.process)
    finally:
        stop_upstream(upstream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.revocation_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", action="store_true", help="also measure the reference's 360 s auth cache")
    parser.add_argument("--revocation-cache", default="0", help="SEACAT_REVOCATION_CACHE_SECONDS of the PKI")
    parser.add_argument("--ocsp-validity", default="60", help="SEACAT_OCSP_VALIDITY_SECONDS of the PKI")
    args = parser.parse_args(argv)

    from tests.conftest import REFERENCE_SPEC
    from tests.e2e.conftest import http, start_stack, stop_stack
    from tests.e2e.test_gateway import find_nginx

    if find_nginx() is None:
        print("nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 1
    results: dict[str, Any] = {"pki": {"SEACAT_REVOCATION_CACHE_SECONDS": args.revocation_cache,
                                       "SEACAT_OCSP_VALIDITY_SECONDS": args.ocsp_validity}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="revocation-latency-") as tmp:
        pki = start_stack(
            Path(tmp),
            extra_env={
                "SEACAT_REVOCATION_CACHE_SECONDS": args.revocation_cache,
                "SEACAT_OCSP_VALIDITY_SECONDS": args.ocsp_validity,
            },
        )
        try:
            for n, (label, extra) in enumerate(modes(args.reference)):
                tenant = f"latency-{n}"
                auth = {"Authorization": f"Bearer {pki.token}", "Content-Type": "application/json"}
                assert http("PUT", f"{pki.url}/tenants/{tenant}", b"{}", auth)[0] == 201
                assert http("PUT", f"{pki.url}/{tenant}/x509/self-signed", REFERENCE_SPEC.encode(), auth)[0] == 201
                limit = 400.0 if "360 s auth cache)" in label and "ocsp" not in label else 120.0
                # start_gateway renders with --auth-cache-valid 1s first; the mode's own options come after
                # and win, and a mode without one takes the renderer's default back.
                default = [] if "--auth-cache-valid" in extra else ["--auth-cache-valid", "5s"]
                found = measure(pki, tenant, Path(tmp) / tenant, [*default, *extra], limit)
                results[label] = found
                shown = f"{found['seconds']:.2f} s, then {found['refused_with']}" if found["seconds"] else "not refused"
                print(f"{label:<58} {shown} ({found['passed']} requests passed after the revocation)", flush=True)
        finally:
            stop_stack(pki)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
