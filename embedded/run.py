"""`make run`: the service on 127.0.0.1, on SQLite and the local key store, behind granian.

Nothing to replay: the state is the database in the data directory (``.seacat-local/``, or
``SEACAT_DATA_DIR``), so a start takes the same time whatever it holds. A start makes the directory
owner-only and takes its lock (one run per directory), finds the key-encryption key
(``SEACAT_LOCAL_KEK``, or the file ``kek`` it generates on the first start), checks that the key
opens the stored secrets, installs the operator token, counts what the database holds, then becomes
granian's master and forks the workers (embedded/server.py). Ctrl-C or SIGTERM stops it and its
workers gracefully. A directory written by the emulator run (``journal.jsonl``) is refused, untouched.

``python -m embedded.run --reset`` (``make reset``) deletes the data directory.
HOST (default 127.0.0.1), PORT (8080), SEACAT_WORKERS (one per CPU) and SEACAT_THREADS (2) move it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from scripts import datadir
from scripts.datadir import EXIT_NOT_STARTED, HOST, ROOT, plural, shown

DEFAULT_DATA_DIR = ROOT / ".seacat-local"
STAGE = "local"
READY_WITHIN_SECONDS = 30.0
# The workers are separate processes: each asks the store for the tenant and the identity at every
# request, so a change one worker made (a configuration, a revocation) holds in all of them at once,
# as it did in the one process of `chalice local`. The SQLite store answers from its read memo while
# nothing was committed since (chalicelib/store/sqlite/db.py). (On Lambda: 5 s, the stage's.)
SAME_STATE_IN_EVERY_WORKER = {"SEACAT_TENANT_CACHE_SECONDS": "0", "SEACAT_REVOCATION_CACHE_SECONDS": "0"}


def our_files() -> tuple[str, ...]:
    """What make reset may delete: this run's files, and those of the emulator run that wrote the
    same default directory before (its refusal says `make reset` to start empty)."""
    from chalicelib.context import LOCAL_DATABASE
    from chalicelib.keystore.local import KEK_FILE
    from scripts import journal

    database = (LOCAL_DATABASE, f"{LOCAL_DATABASE}-*")  # and its -wal, -shm, -journal, -lock
    kek = (KEK_FILE, f".{KEK_FILE}.*.tmp")
    return (*database, *kek, datadir.LOCK, datadir.OPERATOR_TOKEN, f"{datadir.OPERATOR_TOKEN}.tmp", *journal.OUR_FILES)


def refuse_emulator_state(data: Path) -> int:
    """A directory the emulator run wrote (make run before SQLite): say what to do, change nothing."""
    from scripts import journal

    try:
        writes = (data / journal.JOURNAL).read_bytes().count(b"\n")
    except OSError:
        writes = 0
    print(
        f"seacat: {shown(data)} holds the state of the emulator run (the previous `make run`): the AWS "
        f"emulator's journal, {journal.JOURNAL} ({plural(writes, 'saved write')}). `make run` now keeps its "
        "state in SQLite and does not read it. Nothing was changed.\n"
        f"  To keep serving it:  make run-emulator SEACAT_DATA_DIR={shown(data)}\n"
        "  To start empty:      make reset (deletes it, with the tenants' CA private keys: copy it first if you "
        "need them)",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_NOT_STARTED


def database_counts(database: Path) -> dict[str, int]:
    """What the service's database holds, counted directly (chalicelib/store/sqlite/schema.py's tables)."""
    import sqlite3

    if not database.exists():
        return {}
    conn = sqlite3.connect(database, timeout=10)
    try:
        tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts: dict[str, int] = {}
        for key, table, where in _COUNTED:
            if table in tables:
                counts[key] = int(conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0])
        return counts
    finally:
        conn.close()


def checkpoint(database: Path) -> None:
    """Once every worker is gone: the last one out checkpoints the log and removes it, unless two
    closed at once (each saw the other's connection); a connection of its own, the only one, does it."""
    import sqlite3

    if not database.exists():
        return
    conn = sqlite3.connect(database, timeout=10)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the log, as a reader
    except sqlite3.Error:
        pass  # nothing tidied: the next start finds the log and replays it
    finally:
        conn.close()


# What the banner counts: (noun, table, condition), in this order.
_COUNTED = (
    ("tenant", "tenants", ""),
    ("CA certificate", "certificates", "WHERE kind = 'ca'"),
    ("client certificate", "certificates", "WHERE kind = 'seacat'"),
    ("identity", "identities", ""),
    ("certificate request", "requests", ""),
    ("revocation", "certificates", "WHERE revoked_at IS NOT NULL"),
    ("token", "tokens", ""),
    ("audit item", "audit", ""),
)


def state_summary(counts: dict[str, int], secrets: dict[str, int]) -> str:
    parts = [plural(n, noun) for noun, n in counts.items()]
    parts.append(plural(secrets.get("ca-key", 0), "CA key"))
    if secrets.get("webhook-secret"):
        parts.append(plural(secrets["webhook-secret"], "webhook secret"))
    responders = sum(n for kind, n in secrets.items() if kind.startswith("ocsp-signer-"))
    if responders:  # one per CA certificate that has answered OCSP (chalicelib/service/ocsp.py)
        parts.append(plural(responders, "OCSP responder key"))
    from chalicelib.keystore.local import SCHEDULED

    if secrets.get(SCHEDULED):  # retired keys, restorable until their recovery window ends
        parts.append(f"{plural(secrets[SCHEDULED], 'CA key')} scheduled for deletion")
    return ", ".join(parts)


def prepare(data: Path) -> tuple[str, str, str]:
    """Open the store in this process once: the KEK, the operator token, what it holds. Returns the token,
    where the KEK came from and a summary ("" when it holds no tenant); LocalKeyStoreError if the KEK does not open
    the secrets. The context is closed and forgotten before the workers fork."""
    from chalicelib import context
    from chalicelib.cache import Cache
    from chalicelib.keystore.local import LocalKeyStore, load_kek, sealed_count
    from chalicelib.service import tokens
    from chalicelib.settings import get_settings

    context.reset()
    database = data / context.LOCAL_DATABASE
    # A KEK is made for a directory with no secret yet, never for one whose secrets another KEK sealed.
    kek = load_kek(get_settings().local_kek, data, create=sealed_count(database) == 0)
    if kek.created:
        kek_source = f"{shown(Path(kek.source))} (generated now; keep it apart from copies of the database)"
    elif kek.source == "SEACAT_LOCAL_KEK":
        kek_source = "SEACAT_LOCAL_KEK"
    else:
        kek_source = shown(Path(kek.source))
    checking = LocalKeyStore(database, kek.key, Cache("keys", 1), Cache("secrets", 1))
    try:
        secrets = checking.check()  # before anything else opens the database
    finally:
        checking.close()
    from chalicelib.store.sqlite import SqliteBackend

    # Opened here to be closed here: no connection may cross the workers' fork.
    backend = SqliteBackend(database)
    built = context.local_context(data, backend)
    context.install(built)
    try:
        token = os.environ.get("SEACAT_ADMIN_TOKEN") or datadir.operator_token(data)
        tokens.install_operator_token(token)
        counts = database_counts(database)  # one pass: its time grows with the database, a little
        summary = "" if not secrets and not counts.get("tenant") else state_summary(counts, secrets)
    finally:
        if isinstance(built.keystore, LocalKeyStore):
            built.keystore.close()
        backend.close()
        context.reset()
    return token, kek_source, summary


def to_journal() -> bool:
    """True if this process's standard output is systemd's journal: JOURNAL_STREAM names the stream's
    device and inode, which a shell started from a desktop session may inherit without it being ours."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(sys.stdout.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


def banner_token(token: str, data: Path) -> tuple[str, str]:
    """The operator token as the banner shows it, and as its curl example has it. When the output goes
    to systemd's journal, whoever may read the journal would read the token: the banner says where
    the token is instead."""
    if not to_journal():
        return token, token
    where = "SEACAT_ADMIN_TOKEN" if os.environ.get("SEACAT_ADMIN_TOKEN") else shown(data / datadir.OPERATOR_TOKEN)
    return f"in {where} (not written to the journal)", "$TOKEN"


def positive(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"seacat: {name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def port_refusal(host: str, port: int) -> str:
    """Why the server could not listen there ("" if it can), asked before anything starts."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return str(exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
        try:
            probe.bind(address)
        except OSError as exc:
            return "the port is in use (another make run?)" if exc.errno == errno.EADDRINUSE else exc.strerror or ""
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    data = datadir.data_dir(DEFAULT_DATA_DIR)
    if args == ["--reset"]:
        return datadir.reset(
            data,
            our_files(),
            "its database, key-encryption key and operator token: every tenant, CA key and certificate",
        )
    if args:
        print("usage: python -m embedded.run [--reset]", file=sys.stderr)
        return 2
    started = time.monotonic()
    host = os.environ.get("HOST") or HOST
    port = positive("PORT", 8080)

    from scripts import journal

    if (data / journal.JOURNAL).exists():
        return refuse_emulator_state(data)
    os.umask(0o077)  # the database, its WAL and anything else the workers create: owner-only
    datadir.ensure_private(data)
    try:
        lock_fd = datadir.lock(data)  # held by this process and shared by its workers, until the last exits
    except datadir.InUse:
        print(
            f"seacat: another make run is using {shown(data)}; stop it first, or set SEACAT_DATA_DIR to "
            "another directory",
            file=sys.stderr,
        )
        return EXIT_NOT_STARTED
    chosen = set(os.environ)  # what the user set wins over the stage's settings and these defaults
    for name, value in {**datadir.stage_environment(STAGE), **SAME_STATE_IN_EVERY_WORKER}.items():
        if name not in chosen:
            os.environ[name] = value
    os.environ.update({"SEACAT_BACKEND": "sqlite", "SEACAT_DATA_DIR": str(data), "SEACAT_LOCAL_STAGE": STAGE})
    sys.path.insert(0, str(ROOT))

    from chalicelib.keystore.local import LocalKeyStoreError

    try:
        token, kek_source, summary = prepare(data)
    except LocalKeyStoreError as exc:
        print(
            f"seacat: cannot start on {shown(data)}: {exc}.\n"
            "  Nothing was changed. Give the key-encryption key these secrets were sealed with "
            f"(SEACAT_LOCAL_KEK, or the file {shown(data / 'kek')}), or set SEACAT_DATA_DIR to another directory.",
            file=sys.stderr,
            flush=True,
        )
        os.close(lock_fd)
        return EXIT_NOT_STARTED
    except RuntimeError as exc:  # the store's own refusals (e.g. a database of a newer schema)
        print(f"seacat: cannot start on {shown(data)}: {exc}. Nothing was changed.", file=sys.stderr, flush=True)
        os.close(lock_fd)
        return EXIT_NOT_STARTED
    refusal = port_refusal(host, port)
    if refusal:
        print(f"seacat: cannot listen on {host}:{port}: {refusal}; set PORT (or HOST) to another", file=sys.stderr)
        os.close(lock_fd)
        return 1
    if summary:
        print(f"seacat: {shown(data)} holds {summary}", flush=True)
    else:
        print(f"seacat: no saved state in {shown(data)}: starting empty; every change is saved there", flush=True)

    from embedded import server

    workers = positive("SEACAT_WORKERS", server.default_workers())
    threads = positive("SEACAT_THREADS", server.THREADS)
    options = server.ServerOptions(host=host, port=port, workers=workers, threads=threads)
    url = f"http://{options.bind}"
    # Import the app here, once: the workers inherit the loaded modules (their contexts they build themselves).
    import importlib

    importlib.import_module("app")

    served = False
    shown_token, curl_token = banner_token(token, data)

    def announce() -> None:
        nonlocal served
        served = True
        healthy = datadir.wait_healthy(url, time.monotonic() + READY_WITHIN_SECONDS)
        with server.output_lock:
            if not healthy:
                print(f"seacat: the service does not answer {url}/health yet", file=sys.stderr, flush=True)
                return
            print(
                f"\nSeaCat PKI is running on {url} (ready in {time.monotonic() - started:.1f} s)\n"
                f"  Server:        granian, {plural(workers, 'worker')} x {plural(threads, 'thread')}, "
                f"backlog {options.backlog}\n"
                f"  Data:          {shown(data)} (SQLite; one make run at a time)\n"
                f"  Key (KEK):     {kek_source}\n"
                f"  Admin token:   {shown_token}\n"
                f"Try:  curl -X PUT -H 'Authorization: Bearer {curl_token}' {url}/tenants/TENANT\n"
                "Ctrl-C stops it.\n",
                flush=True,
            )

    status = server.serve(options, announce)
    checkpoint(data / "seacat.db")
    with server.output_lock:
        if served:
            print(f"seacat: stopped; the state is saved in {shown(data)}", flush=True)
        else:
            print(f"seacat: the server did not start on {url} (see above); nothing was served", file=sys.stderr)
            status = status or 1
    os.close(lock_fd)
    return status


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C while starting: nothing is half-written (every write is a transaction)
        print("seacat: interrupted while starting", file=sys.stderr)
        code = 130
    sys.exit(code)
