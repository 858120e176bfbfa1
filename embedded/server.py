"""The HTTP server of `make run` and of self-hosting: gunicorn in front of embedded/wsgi.py.

Pre-forked worker processes (one per CPU by default), each with a few threads (gunicorn's gthread
worker: keep-alive connections wait in its event loop, not in a thread), a listen backlog of 2048.
The workers are forked from this process, which then only supervises them; each builds its own
context (SQLite connections, the KEK) at its first request, never sharing the parent's.

Stopping: SIGTERM, or SIGINT (Ctrl-C, which a terminal sends to the workers too: they leave it to
this process), stops gracefully: no new connections, requests in flight finish (up to
GRACEFUL_SECONDS), then the workers exit. A worker whose parent is gone (kill -9) exits by itself
within a second. A second Ctrl-C during the stop stops at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

# Held around output from the parent's threads and across each fork, so no worker starts with it taken.
output_lock = threading.Lock()
os.register_at_fork(before=output_lock.acquire, after_in_parent=output_lock.release, after_in_child=output_lock.release)

BACKLOG = 2048
THREADS = 4
KEEPALIVE_SECONDS = 5
GRACEFUL_SECONDS = 10


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    workers: int
    threads: int = THREADS
    backlog: int = BACKLOG
    log_level: str = "warning"
    access_log: str | None = None  # gunicorn's own access log ("-": stdout); the app logs one line per request

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _forget_parent_context(*_: Any) -> None:
    """In a new worker: whatever context the parent built is its own; this process builds one anew."""
    from chalicelib import context

    context.reset()


def _worker_ready(*_: Any) -> None:
    # Ctrl-C reaches the whole process group; the parent turns it into a graceful stop (SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The context now, not at the first request: a worker that cannot build one fails to boot.
    from chalicelib import context

    context.current()


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        o = self.options
        settings: dict[str, Any] = {
            "bind": [o.bind],
            "workers": o.workers,
            "worker_class": "gthread",
            "threads": o.threads,
            "backlog": o.backlog,
            "keepalive": KEEPALIVE_SECONDS,
            "graceful_timeout": GRACEFUL_SECONDS,
            "timeout": 60,  # a worker silent this long is restarted (its loop beats about once a second)
            "preload_app": False,
            "proc_name": "seacat-pki",
            "loglevel": o.log_level,
            "accesslog": o.access_log,
            "errorlog": "-",
            "control_socket_disable": True,
            "post_fork": lambda server, worker: _forget_parent_context(),
            "post_worker_init": lambda worker: _worker_ready(),
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from embedded.wsgi import create_application

        return create_application()


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, with Ctrl-C as a graceful stop and a callback once the first workers run."""

    def __init__(self, app: _Application, on_started: Callable[[], None] | None) -> None:
        super().__init__(app)
        self._on_started = on_started

    def handle_int(self) -> None:
        self.handle_term()

    def manage_workers(self) -> None:
        super().manage_workers()
        if self._on_started is not None:
            callback, self._on_started = self._on_started, None
            threading.Thread(target=callback, name="seacat-ready", daemon=True).start()


def serve(options: ServerOptions, on_started: Callable[[], None] | None = None) -> int:
    """Serve until stopped; returns the exit status. ``on_started`` runs in a thread of this process
    once the first workers are forked (e.g. to wait for /health and say so; print under output_lock)."""
    parent = os.getpid()
    try:
        _Arbiter(_Application(options), on_started).run()
    except SystemExit as exc:
        if os.getpid() != parent:  # a worker leaving: it exits here, never returns into the caller's code
            raise
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
