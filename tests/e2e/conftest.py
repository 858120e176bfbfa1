"""The local stack exactly as `make run` starts it, on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    data_dir: Path | None = None  # where this stack keeps its state (SEACAT_DATA_DIR)

    @property
    def emulator_url(self) -> str:
        """The AWS emulator's endpoint, as the banner prints it."""
        found = re.search(r"AWS emulator:\s+(http://127\.0\.0\.1:\d+)", self.log.read_text())
        assert found, "no emulator endpoint in the log"
        return found.group(1)


def start_stack(
    tmp: Path,
    token: str = "sct_00000000000000e2_end-to-end-operator-token",
    extra_env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> Stack:
    """Start `make run`'s stack; its log goes to ``tmp``.

    Its state lives in ``data_dir``: pass the same directory again to restart on the same state.
    Without one, a fresh directory under ``tmp`` (each start sees an empty emulator).
    """
    port = free_port()
    log = tmp / "stack.log"
    for n in range(2, 100):
        if not log.exists():
            break
        log = tmp / f"stack-{n}.log"
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=tmp)) / "seacat-local"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_"))}
    env.update(
        {"PORT": str(port), "SEACAT_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1", "SEACAT_DATA_DIR": str(data_dir)}
    )
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
            return Stack(url, token, process, log, data_dir)
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)
    raise RuntimeError("the local stack was not ready within 60 s:\n" + log.read_text()[-3000:])


def stop_stack(stack: Stack) -> int:
    stack.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        return stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        raise


def kill_stack(stack: Stack) -> int:
    """kill -9 of the stack's whole process group (local_run, its emulator thread, chalice local)."""
    os.killpg(stack.process.pid, signal.SIGKILL)
    return stack.process.wait(timeout=15)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is end to end and slow (``pytest -m "not slow"`` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, *, close: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One request over a new connection (``close``: also ask the server to close it); any status."""
    import urllib.error

    extra = {"Connection": "close"} if close else {}
    request = urllib.request.Request(url, data=body, method=method, headers={**extra, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def setup_tenant(stack: Stack, tenant: str, config: str = "{}", *, new: bool = False) -> str:
    """A tenant (``new``: must not exist yet) with a self-signed CA from the reference spec; returns ``TENANT:<id>``."""
    import json

    from tests.conftest import REFERENCE_SPEC

    auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
    status, _, body = http("PUT", f"{stack.url}/tenants/{tenant}", config.encode(), auth)
    assert status == 201 if new else status in (200, 201), body
    status, _, body = http("PUT", f"{stack.url}/{tenant}/x509/self-signed", REFERENCE_SPEC.encode(), auth)
    assert status == 201, body
    return str(json.loads(body)["ca_cert"])
