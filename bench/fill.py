"""Fill a stopped `make run`'s data directory with enrolments, quickly and through the service itself.

    python -m bench.fill DATA_DIR TENANT TARGET SECONDS

Each enrolment is the service's own use case, ``enrollment.enroll(tenant, cr)``, the one the PUT
route calls, on the context `make run`'s workers build (``context.local_context``: the same SQLite
store, the same local key store and KEK, the stage's settings as embedded/run.py sets them), with a
new P-256 key and SeaCat CR each: the CR is decoded and verified, the certificate signed and stored
with its request, identity and audit item, one transaction each, committed as the server commits.
What it skips is HTTP, granian and Chalice's routing. It holds the directory's lock, as `make run`
does, so no server can run on the directory meanwhile.

Stops once the database holds TARGET client certificates of the tenant, or after SECONDS (bounded in
both); prints one JSON line: how many it enrolled, how long it took, how many the tenant holds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

BATCH = 50  # keys and CRs are made this many at a time, and the count is checked between batches


def stored(database: Path, tenant: str) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute(
            "SELECT count(*) FROM certificates WHERE tenant_id = ? AND kind = 'seacat'", (tenant,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def fill(data: Path, tenant: str, target: int, seconds: float) -> dict[str, object]:
    from embedded.run import SAME_STATE_IN_EVERY_WORKER, STAGE
    from scripts import datadir

    for name, value in {**datadir.stage_environment(STAGE), **SAME_STATE_IN_EVERY_WORKER}.items():
        os.environ.setdefault(name, value)
    os.environ.update({"SEACAT_BACKEND": "sqlite", "SEACAT_DATA_DIR": str(data), "SEACAT_LOCAL_STAGE": STAGE})
    os.umask(0o077)
    lock_fd = datadir.lock(data)  # datadir.InUse if a server runs on it
    try:
        from cryptography.hazmat.primitives.asymmetric import ec

        from chalicelib import context
        from chalicelib.service import enrollment
        from seacat_client.cr import build_cr

        context.reset()
        database = data / context.LOCAL_DATABASE
        before = stored(database, tenant)
        context.install(context.local_context(data))
        started = time.monotonic()
        deadline = started + seconds
        done = 0
        while before + done < target and time.monotonic() < deadline:
            crs = [
                build_cr(ec.generate_private_key(ec.SECP256R1()), application="bench-fill")
                for _ in range(min(BATCH, target - before - done))
            ]
            for cr in crs:
                result = enrollment.enroll(tenant, cr)
                if result.status != 200:
                    raise RuntimeError(f"enrolment answered {result.status}")
                done += 1
        took = time.monotonic() - started
        context.reset()
        return {
            "enrolled": done,
            "seconds": round(took, 2),
            "per_s": round(done / took, 1) if took else None,
            "before": before,
            "stored": stored(database, tenant),
        }
    finally:
        os.close(lock_fd)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    data, tenant, target, seconds = Path(argv[0]), argv[1], int(argv[2]), float(argv[3])
    # The service logs a JSON line per enrolment on stdout: the result goes to stderr's last line.
    result = fill(data, tenant, target, seconds)
    print(json.dumps(result), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
