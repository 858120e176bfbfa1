"""Fill a stopped `make run`'s data directory with enrolments, quickly and through the service itself,
and measure how many a second the service's own enrolment code makes with no HTTP in front of it.

    python -m bench.fill DATA_DIR TENANT TARGET SECONDS [PROCESSES]

Each enrolment is the service's own use case, ``enrollment.enroll(tenant, cr)``, the one the PUT
route calls, on the context `make run`'s workers build (``context.local_context``: the same SQLite
store, the same local key store and KEK, the stage's settings as embedded/run.py sets them), with a
new P-256 key and SeaCat CR each: the CR is decoded and verified, the certificate signed and stored
with its request, identity and audit item, one durable transaction each, committed as the server
commits. What it skips is HTTP, granian, Chalice's routing and any client. PROCESSES processes
(default: one per CPU, as `make run` has workers) enrol at once, each on its own connections; their
keys and CRs are made before the clock starts, so the rate (``per_s``) is the ceiling of an
enrolment through `make run` on this machine: what HTTP, the server and the client cost comes on
top. The parent holds the directory's lock, as `make run` does, so no server can run on it meanwhile.

Stops once the database holds TARGET client certificates of the tenant, or after SECONDS (bounded in
both); prints one JSON line: how many it enrolled, how long it took, the CPU time each, how many the
tenant holds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

PREPARE_SECONDS = 120.0  # for the workers to make their CRs and open their context, at most


def stored(database: Path, tenant: str) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute(
            "SELECT count(*) FROM certificates WHERE tenant_id = ? AND kind = 'seacat'", (tenant,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def _environment(data: Path) -> None:
    from embedded.run import SAME_STATE_IN_EVERY_WORKER, STAGE
    from scripts import datadir

    for name, value in {**datadir.stage_environment(STAGE), **SAME_STATE_IN_EVERY_WORKER}.items():
        os.environ.setdefault(name, value)
    os.environ.update({"SEACAT_BACKEND": "sqlite", "SEACAT_DATA_DIR": str(data), "SEACAT_LOCAL_STAGE": STAGE})
    os.umask(0o077)


def _worker(data: Path, tenant: str, count: int, go: Event, seconds: float, out: Connection) -> None:
    """One process: make ``count`` CRs, open the context, wait for ``go``, enrol until done or ``seconds``
    have passed; sends (enrolled, wall seconds, CPU seconds)."""
    try:
        _environment(data)
        from cryptography.hazmat.primitives.asymmetric import ec

        from chalicelib import context
        from chalicelib.service import enrollment
        from seacat_client.cr import build_cr

        crs = [build_cr(ec.generate_private_key(ec.SECP256R1()), application="bench-fill") for _ in range(count)]
        context.reset()
        context.install(context.local_context(data))
        out.send(("ready",))
        if not go.wait(PREPARE_SECONDS):
            return
        done = 0
        started, cpu = time.perf_counter(), time.process_time()
        for cr in crs:
            if time.perf_counter() - started >= seconds:
                break
            result = enrollment.enroll(tenant, cr)
            if result.status != 200:
                raise RuntimeError(f"enrolment answered {result.status}")
            done += 1
        out.send(("done", done, time.perf_counter() - started, time.process_time() - cpu))
        context.close()
    except BaseException as exc:
        out.send(("error", f"{type(exc).__name__}: {exc}"[:1000]))
        raise


def fill(data: Path, tenant: str, target: int, seconds: float, processes: int | None = None) -> dict[str, Any]:
    from chalicelib import context
    from scripts import datadir

    _environment(data)
    lock_fd = datadir.lock(data)  # datadir.InUse if a server runs on it
    try:
        database = data / context.LOCAL_DATABASE
        before = stored(database, tenant)
        wanted = max(0, target - before)
        processes = max(1, min(processes or os.cpu_count() or 1, wanted or 1))
        # spawn: no process inherits the parent's state (a connection must not cross a fork).
        spawn = multiprocessing.get_context("spawn")
        go = spawn.Event()
        workers, pipes = [], []
        for i in range(processes if wanted else 0):
            share = wanted // processes + (1 if i < wanted % processes else 0)
            receive, send = spawn.Pipe(duplex=False)
            worker = spawn.Process(target=_worker, args=(data, tenant, share, go, seconds, send), daemon=True)
            worker.start()
            workers.append(worker)
            pipes.append(receive)
        try:
            for pipe in pipes:  # every worker ready (CRs made, context open) before the clock starts
                if not pipe.poll(PREPARE_SECONDS):
                    raise RuntimeError("a fill worker was not ready in time")
                message = pipe.recv()
                if message[0] != "ready":
                    raise RuntimeError(f"a fill worker failed: {message[1:]}")
            started = time.perf_counter()
            go.set()
            results = []
            for pipe in pipes:
                if not pipe.poll(seconds + 60):
                    raise RuntimeError("a fill worker did not finish in time")
                message = pipe.recv()
                if message[0] != "done":
                    raise RuntimeError(f"a fill worker failed: {message[1:]}")
                results.append(message[1:])
            took = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.join(30)
                if worker.is_alive():
                    worker.kill()
                    worker.join(5)
        done = sum(r[0] for r in results)
        cpu = sum(r[2] for r in results)
        return {
            "enrolled": done,
            "processes": len(workers),
            "seconds": round(took, 2),
            "per_s": round(done / took, 1) if done else None,
            "cpu_ms_each": round(cpu * 1000 / done, 3) if done else None,
            "before": before,
            "stored": stored(database, tenant),
        }
    finally:
        os.close(lock_fd)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    data, tenant, target, seconds = Path(argv[0]), argv[1], int(argv[2]), float(argv[3])
    processes = int(argv[4]) if len(argv) == 5 else None
    # The service logs a JSON line per enrolment on stdout: the result goes to stderr's last line.
    result = fill(data, tenant, target, seconds, processes)
    print(json.dumps(result), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
