"""The local stack exactly as `make run` starts it, on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


def start_stack(
    tmp: Path, token: str = "sct_00000000000000e2_end-to-end-operator-token", extra_env: dict[str, str] | None = None
) -> Stack:
    port = free_port()
    log = tmp / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_"))}
    env.update({"PORT": str(port), "SEACAT_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_run"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the local stack exited:\n" + log.read_text()[-3000:])
        if b"is running on" in log.read_bytes():
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                assert r.status == 200
            return Stack(url, token, process, log)
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the local stack was not ready within 60 s:\n" + log.read_text()[-3000:])


def stop_stack(stack: Stack) -> int:
    stack.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        return stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        raise


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running)
