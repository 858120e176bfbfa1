"""The local stacks exactly as `make run` and `make run-emulator` start them, on 127.0.0.1, for
end-to-end tests.

``stack`` is `make run`'s (granian workers on SQLite and the local key store: embedded/run.py), the
one most tests use; ``emulator_stack`` is `make run-emulator`'s (chalice local on the AWS emulator:
scripts/local_run.py), for the tests about the AWS wiring (DynamoDB items, Secrets Manager, KMS).
"""

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
from requests.structures import CaseInsensitiveDict

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


EMBEDDED = "embedded.run"  # make run
EMULATOR = "scripts.local_run"  # make run-emulator
READY_SECONDS = 60


def command_env(data_dir: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run: none of the caller's AWS_ or SEACAT_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_"))}
    env.update({"PYTHONUNBUFFERED": "1", "SEACAT_DATA_DIR": str(data_dir)})
    env.update(extra_env or {})
    return env


@dataclass
class Stack:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path | None = None  # where this stack keeps its state (SEACAT_DATA_DIR)
    module: str = EMBEDDED

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
    module: str = EMBEDDED,
) -> Stack:
    """Start `make run`'s stack (``module``: EMULATOR for `make run-emulator`'s); its log goes to ``tmp``.

    Its state lives in ``data_dir``: pass the same directory again to restart on the same state.
    Without one, a fresh directory under ``tmp`` (each start is empty). Ready once ``GET /health``
    answers 200 and the banner is out, within READY_SECONDS.
    """
    port = free_port()
    log = tmp / "stack.log"
    for n in range(2, 100):
        if not log.exists():
            break
        log = tmp / f"stack-{n}.log"
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=tmp)) / "seacat-local"
    env = command_env(data_dir, {"PORT": str(port), "SEACAT_ADMIN_TOKEN": token, **(extra_env or {})})
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the local stack exited:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                healthy = r.status == 200
        except OSError:
            healthy = False
        if healthy and b"is running on" in log.read_bytes():
            return Stack(url, token, process, log, data_dir, module)
        time.sleep(0.05)  # polling /health, not a stand-in for it
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)
    raise RuntimeError(f"the local stack was not ready within {READY_SECONDS} s:\n" + log.read_text()[-3000:])


def stop_stack(stack: Stack) -> int:
    stack.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        return stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        raise


def kill_stack(stack: Stack) -> int:
    """kill -9 of the stack's whole process group (make run's server and its workers; or local_run,
    its emulator thread and chalice local)."""
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


@pytest.fixture(scope="session")
def emulator_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("emulator-stack"), module=EMULATOR)
    yield running
    stop_stack(running)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, *, close: bool = False
) -> tuple[int, CaseInsensitiveDict[str], bytes]:
    """One request over a new connection (``close``: also ask the server to close it); any status.
    Header names are case-insensitive, as HTTP has them (granian sends them in lower case)."""
    import urllib.error

    extra = {"Connection": "close"} if close else {}
    request = urllib.request.Request(url, data=body, method=method, headers={**extra, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, CaseInsensitiveDict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, CaseInsensitiveDict(e.headers.items()), e.read()


def revoke(stack: Stack, tenant: str, der: bytes, reason: str | None = "keyCompromise") -> None:
    """Revoke the tenant's certificate ``der`` through the admin API (``reason`` None: the default)."""
    import hashlib
    import json

    cert_id = hashlib.sha384(der).hexdigest()
    body = json.dumps({"reason": reason}).encode() if reason else b"{}"
    auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
    status, _, answer = http("PUT", f"{stack.url}/{tenant}/x509/cert/{cert_id}/revoke", body, auth)
    assert status == 200, answer


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
