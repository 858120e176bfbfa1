"""The HTTP server of `make run` and of self-hosting: granian in front of embedded/wsgi.py.

granian (Rust: hyper's HTTP/1.1 and tokio) parses requests, keeps connections alive and writes the
answers outside the GIL; Python runs only the WSGI call, in a few threads of each worker process.
Measured here against gunicorn's gthread worker on the same app (docs/performance.md): 0.17–0.19
against 0.41–0.42 ms of server CPU per request for a trivial app, nginx_authenticate 0.55–0.62
against 0.89 ms. Worker processes (one per CPU by default) each run THREADS Python threads: more
threads per process cost more in GIL hand-offs than they gain; requests beyond them wait in
granian's queue (its backpressure), not in the kernel's. Listen backlog 2048.

The workers are forked from this process, which then only supervises them; each builds its own
context (SQLite connections, the KEK) before it serves, never sharing the parent's: a worker that
cannot build one exits at once, and the server stops (exit status 1) once its replacement fails too.

Stopping: SIGTERM or SIGINT (Ctrl-C: the workers block it, the server stops them) stops
gracefully: no new connections, requests in flight finish, then the workers exit; one still busy
after GRACEFUL_SECONDS is killed. A worker whose parent is gone (kill -9) stops itself within a
second; a worker that dies is replaced.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

# Held around output from the parent's threads and across each fork, so no worker starts with it taken.
output_lock = threading.Lock()
os.register_at_fork(before=output_lock.acquire, after_in_parent=output_lock.release, after_in_child=output_lock.release)

BACKLOG = 2048
THREADS = 2
# The request line and headers together: past this granian answers 431 itself (hyper's minimum is
# 8 KiB; a client certificate forwarded in a header by the gateway takes 2-4 KiB). A head must
# arrive within HEAD_SECONDS of the connection (or of the previous request on it).
HEAD_LIMIT = 16384
HEAD_SECONDS = 30
GRACEFUL_SECONDS = 10
PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    workers: int
    threads: int = THREADS
    backlog: int = BACKLOG
    log_level: str = "warning"
    access_log: bool = False  # granian's own access log; the app logs one line per request anyway

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# A stop (SIGTERM) that reaches a worker while it boots would run the handler the fork copied from the
# server, which stops nothing in a child: the worker would serve on until killed after GRACEFUL_SECONDS,
# with the requests in flight of its siblings. From the fork on, a stop is held here instead: a worker
# stopped while it boots leaves before serving (worker_application); one stopped in the instant
# between its boot and granian's own handler has the stop repeated to that handler (_watch_parent).
_stop_held = threading.Event()
_holding = False


def _hold_stop(signum: int, frame: object) -> None:
    _stop_held.set()


def _hold_stops_from_the_fork() -> None:
    signal.signal(signal.SIGTERM, _hold_stop)


def _watch_parent(parent: int) -> None:
    """In a worker: a stop held since the fork is repeated once granian's handler is in; then, once the
    server that forked it is gone (kill -9), stop as on SIGTERM."""
    while signal.getsignal(signal.SIGTERM) is _hold_stop:  # granian installs its own as it starts serving
        time.sleep(0.01)
    if _stop_held.is_set():
        # Again until the worker is gone: granian's handler is in a moment before its serving loop
        # waits for the signal, and a stop in between would be lost. Repeating one is harmless.
        for _ in range(int(GRACEFUL_SECONDS / 0.25)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.25)
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


# CGI names a WSGI environ gives meaning to that granian does not set on every request: from the
# environment they would be read as the request's (its raw target, its Content-Type or -Length).
_REQUEST_NAMES = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH", "RAW_URI", "REQUEST_URI", "HTTPS", "AUTH_TYPE"})
_REQUEST_NAMES |= {"REMOTE_USER", "REMOTE_HOST", "REMOTE_PORT", "PATH_TRANSLATED", "DOCUMENT_ROOT"}


def strip_request_lookalikes(environ: MutableMapping[str, str]) -> list[str]:
    """granian starts every request's WSGI environ from a copy of the worker's os.environ: a variable
    named like a header (HTTP_PROXY) or like request data (REQUEST_URI, CONTENT_TYPE) would reach the
    app as the request's. The worker's environment loses them; returns the names removed."""
    names = [n for n in environ if n.startswith("HTTP_") or n in _REQUEST_NAMES]
    for name in names:
        del environ[name]
    return names


def _leave() -> None:
    """A worker's last act: close every SQLite connection it holds. The context's own first; then
    whatever a reference cycle still keeps (a connection of a thread granian let go, a statement
    held by a traceback): the process ends with os._exit, so what the collector does not reach now
    stays open, and the log (seacat.db-wal) then outlives the server."""
    import gc

    from chalicelib import context

    context.close()
    gc.collect()


def worker_application(target: str, parent: int) -> Callable[..., Any]:
    """Run in each new worker before it serves (granian's target loader): its own context, then the
    WSGI app. Raising here makes the worker exit, and the server stop."""
    from multiprocessing import util

    from chalicelib import context

    # Ctrl-C in a terminal sends SIGINT to the whole group: the server turns it into a graceful stop
    # of its workers (SIGTERM). Blocked here, before any thread starts, so every thread inherits it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    context.reset()  # whatever the parent built is the parent's
    context.current()  # now, not at the first request: a worker that cannot build one fails to boot
    # A worker process ends with os._exit once granian has stopped serving: its connections are
    # closed by multiprocessing's exit handlers, so the last one out checkpoints and removes the log.
    util.Finalize(None, _leave, exitpriority=10)
    strip_request_lookalikes(os.environ)
    threading.Thread(target=_watch_parent, args=(parent,), name="seacat-parent-watch", daemon=True).start()
    from embedded.wsgi import create_application

    application = create_application()
    if _stop_held.is_set():
        # Stopped while booting: leave without serving (exit handlers close the context, _leave).
        raise SystemExit(0)
    return application


def serve(options: ServerOptions, on_started: Callable[[], None] | None = None) -> int:
    """Serve until stopped; returns the exit status. ``on_started`` runs in a thread of this process
    once the socket listens and the workers are being started (e.g. to wait for /health and say so;
    print under output_lock)."""
    from functools import partial

    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server.mp import MPServer

    server = MPServer(
        "embedded.wsgi:application",  # a name for granian's logs: the loader below builds the app
        address=options.host,
        port=options.port,
        interface=Interfaces.WSGI,
        workers=options.workers,
        blocking_threads=options.threads,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEAD_SECONDS * 1000, max_buffer_size=HEAD_LIMIT),
        backlog=options.backlog,
        log_level=LogLevels(options.log_level),
        log_access=options.access_log,
        workers_kill_timeout=GRACEFUL_SECONDS,
        # A worker that dies (out of memory, a crash) is replaced; one that dies again within
        # 5.5 s of its replacement (it cannot boot) stops the server instead.
        respawn_failed_workers=True,
    )
    if on_started is not None:
        callback = on_started

        @server.on_startup
        def _started() -> None:
            threading.Thread(target=callback, name="seacat-ready", daemon=True).start()

    parent = os.getpid()
    global _holding
    if not _holding:  # this process forks only its workers from here on
        os.register_at_fork(after_in_child=_hold_stops_from_the_fork)
        _holding = True
    try:
        server.serve(target_loader=partial(worker_application, parent=parent))
    except SystemExit as exc:
        if os.getpid() != parent:  # a worker leaving: it exits here, never returns into the caller's code
            raise
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
