"""pytest plugin: over the whole run, no private key, token or secret value may appear in a response
body or header, or in a log record. Enabled by ``pytest_plugins = ["tests.secret_scan"]`` in
tests/conftest.py.

What it watches:

- every response of ``chalice.test.Client`` (an autouse fixture wraps ``TestHTTPClient.request``);
- every log record that reaches the root logger (a handler installed for the whole session), with
  its message, its ``extra=`` fields and any exception text;
- at the end, the logs of the ``make run`` stacks the end-to-end tests started (``stack*.log`` under
  pytest's temporary directory), less the banner that prints the operator token on purpose.

What counts as a leak:

- any PEM private key block (``-----BEGIN ... PRIVATE KEY-----``);
- the body of any CA private key the service generated or imported in this run (each 64-character
  base64 line of its PEM, so a key stripped of its armour is still caught) and its private scalar
  in hex: the plugin records them by wrapping ``chalicelib.ca.keys``;
- any token of the service's form (``sct_<16 hex>_<secret>``), and any other bearer token a test
  sent (operator tokens may be any string). The one answer that shows a token, ``POST /tokens``
  201, may contain the token it created and nothing else.
- any approve webhook signing secret in its shown form (``whsec_<64 hex>``), and every one the
  service made in this run also as bare hex or base64 (the plugin learns them by wrapping
  ``chalicelib.service.webhook.new_secret``). The answers that show one (``POST
  /{tenant}/webhook/secret`` 201, a ``PUT /tenants/{tenant}`` that set the first approve URL) may
  contain the one in their ``webhookSecret`` and nothing else.

A leak does not fail the test that caused it (the cause may be anywhere); the run fails at its end
with a list of where each leak was seen, the secret itself redacted.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
TOKEN = re.compile(r"sct_[0-9a-f]{16}_[A-Za-z0-9_-]{20,100}")
WEBHOOK_SECRET = re.compile(r"whsec_[0-9a-fA-F]{64}")
GATEWAY_CREDENTIAL = re.compile(r"sgc_[A-Za-z0-9_-]{43}")
B64_RUN = re.compile(r"[A-Za-z0-9+/]{64,}")
HEX_RUN = re.compile(r"[0-9a-fA-F]{64,}")
# make run prints the operator token in its banner: that is its job, not a leak.
BANNER = re.compile(r"^\s*(Admin token:|Try:\s+curl .*Authorization: Bearer)")
MAX_REPORTED = 50


@dataclass
class Scanner:
    key_lines: set[str] = field(default_factory=set)  # 64-char base64 lines of known private keys
    scalars: set[str] = field(default_factory=set)  # lowercase hex private scalars
    tokens: set[str] = field(default_factory=set)  # bearer tokens seen in requests (any form)
    webhook_secrets: set[bytes] = field(default_factory=set)  # signing keys the service made
    leaks: list[str] = field(default_factory=list)
    checked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- learning secrets ------------------------------------------------------------------------

    def add_private_key(self, key: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        try:
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            ).decode("ascii")
            pkcs8 = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
            scalar = format(key.private_numbers().private_value, "064x")
        except Exception:  # not a private key object: nothing to learn
            return
        with self.lock:
            for text in (pem, pkcs8):
                self.key_lines.update(line for line in text.splitlines() if len(line) == 64)
            self.scalars.add(scalar)

    def add_webhook_secret(self, key: Any) -> None:
        if isinstance(key, bytes) and len(key) >= 16:
            with self.lock:
                self.webhook_secrets.add(key)

    def add_token(self, token: str) -> None:
        token = token.strip()
        if len(token) >= 16:
            with self.lock:
                self.tokens.add(token)

    # -- looking ---------------------------------------------------------------------------------

    def find(self, text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
        """What in ``text`` is a secret (redacted descriptions)."""
        found: list[str] = []
        if PEM_PRIVATE.search(text):
            found.append("a PEM private key block")
        for match in TOKEN.finditer(text):
            if match.group(0) not in allowed:
                found.append(f"a token {match.group(0)[:12]}...")
        for match in WEBHOOK_SECRET.finditer(text):
            if match.group(0) not in allowed:
                found.append(f"a webhook secret {match.group(0)[:8]}...")
        for match in GATEWAY_CREDENTIAL.finditer(text):
            if match.group(0) not in allowed:
                found.append(f"a gateway credential {match.group(0)[:8]}...")
        with self.lock:
            tokens = [t for t in self.tokens if t not in allowed]
            lines, scalars = self.key_lines, self.scalars
            for key in self.webhook_secrets:
                if f"whsec_{key.hex()}" in allowed:
                    continue
                forms = (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("="))
                if key.hex() in text.lower() or any(form.rstrip("=") in text for form in forms):
                    found.append("a webhook signing secret the service made")
            for token in tokens:
                if token in text:
                    found.append(f"a bearer token {token[:6]}... that a test sent")
            for run in B64_RUN.findall(text):
                if any(run[i : i + 64] in lines for i in range(len(run) - 63)):
                    found.append("the body of a CA private key")
                    break
            for run in HEX_RUN.findall(text):
                low = run.lower()
                if any(low[i : i + 64] in scalars for i in range(len(low) - 63)):
                    found.append("a CA private key scalar")
                    break
        return found

    def check(self, where: str, text: str, allowed: frozenset[str] = frozenset()) -> None:
        self.checked += 1
        for what in self.find(text, allowed):
            with self.lock:
                if len(self.leaks) < MAX_REPORTED:
                    self.leaks.append(f"{what} in {where}")


SCANNER = Scanner()


class CollectingHandler(logging.Handler):
    """Scans every record that reaches the root logger."""

    def __init__(self, scanner: Scanner) -> None:
        super().__init__(level=logging.NOTSET)
        self.scanner = scanner
        self.test = "(outside tests)"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [record.getMessage()]
            reserved = _RESERVED
            extras = {k: v for k, v in vars(record).items() if k not in reserved}
            if extras:
                parts.append(json.dumps(extras, default=str))
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
            if record.exc_text:
                parts.append(record.exc_text)
            if record.stack_info:
                parts.append(record.stack_info)
            self.scanner.check(f"log record of {record.name!r} during {self.test}", "\n".join(parts))
        except Exception:  # a scanner must never break the code under test
            self.handleError(record)


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER = CollectingHandler(SCANNER)


def text_of(data: object) -> str:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("latin-1")
    return str(data)


def scan_response(
    scanner: Scanner,
    where: str,
    method: str,
    path: str,
    status: int,
    headers: dict[str, Any],
    body: bytes,
    sent_token: str | None = None,
) -> None:
    text = text_of(body)
    allowed: frozenset[str] = frozenset()
    if sent_token and headers.get("x-amzn-ErrorType") == "UnauthorizedException":
        # No route matched: the emulated API Gateway (chalice local) echoes the caller's own
        # Authorization header back to it, as API Gateway once did. The service never ran.
        allowed = frozenset({sent_token})
    route = path.split("?")[0].rstrip("/")
    if method.upper() == "POST" and route == "/tokens" and status == 201:
        try:
            allowed = allowed | {json.loads(body)["token"]}
        except (ValueError, KeyError, TypeError):
            pass
    shows_secret = (method.upper() == "POST" and route.endswith("/webhook/secret") and status == 201) or (
        method.upper() == "PUT" and route.startswith("/tenants/") and status in (200, 201)
    )
    if shows_secret:
        try:
            allowed = allowed | {json.loads(body)["webhookSecret"]}
        except (ValueError, KeyError, TypeError):
            pass
    if method.upper() == "POST" and path.split("?")[0].endswith("/gateway/credential") and status == 201:
        try:
            allowed = allowed | {json.loads(body)["credential"]}  # shown once, in this answer only
        except (ValueError, KeyError, TypeError):
            pass
    scanner.check(f"{where}: {method} {path} -> {status} body", text, allowed)
    scanner.check(f"{where}: {method} {path} -> {status} headers", json.dumps(headers, default=str))


def wrap_request(scanner: Scanner, original: Callable[..., Any], where: Callable[[], str]) -> Callable[..., Any]:
    def request(self: Any, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Any:
        sent: str | None = None
        for name, value in (headers or {}).items():
            if name.lower() == "authorization" and isinstance(value, str):
                sent = value.partition(" ")[2].strip() or None
                scanner.add_token(value.partition(" ")[2])
        response = original(self, method, path, headers=headers, body=body)
        scan_response(scanner, where(), method, path, response.status_code, dict(response.headers), response.body, sent)
        return response

    return request


def _wrap_keys(scanner: Scanner) -> list[tuple[Any, str, Any]]:
    """Learn every CA key the service makes or imports (by wrapping chalicelib.ca.keys), and every
    webhook signing key it makes (chalicelib.service.webhook.new_secret)."""
    from chalicelib.ca import keys

    originals: list[tuple[Any, str, Any]] = []
    try:
        from chalicelib.service import webhook

        made = getattr(webhook, "new_secret", None)
        if made is not None:

            def new_secret(*args: Any, **kwargs: Any) -> Any:
                key = made(*args, **kwargs)
                scanner.add_webhook_secret(key)
                return key

            originals.append((webhook, "new_secret", made))
            webhook.new_secret = new_secret
    except ImportError:
        pass

    def learn_result(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            scanner.add_private_key(result)
            return result

        return wrapper

    def learn_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(key: Any, *args: Any, **kwargs: Any) -> Any:
            scanner.add_private_key(key)
            return fn(key, *args, **kwargs)

        return wrapper

    for name, wrap in (
        ("generate_ca_key", learn_result),
        ("load_ca_private_key_pem", learn_result),
        ("private_key_to_pem", learn_argument),
    ):
        original = getattr(keys, name, None)
        if original is not None:
            originals.append((keys, name, original))
            setattr(keys, name, wrap(original))
    return originals


_restore: list[tuple[Any, str, Any]] = []


# The service's "seacat" loggers do not propagate to the root logger (so Lambda's own root handler
# does not print each line a second time): scan both.
_LOGGERS = ("", "seacat")


def pytest_configure(config: pytest.Config) -> None:
    for name in _LOGGERS:
        logging.getLogger(name).addHandler(_HANDLER)
    try:
        _restore.extend(_wrap_keys(SCANNER))
    except ImportError:  # the scanner still looks for PEM blocks and tokens
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in _LOGGERS:
        logging.getLogger(name).removeHandler(_HANDLER)
    for module, name, original in _restore:
        setattr(module, name, original)
    _restore.clear()


@pytest.fixture(autouse=True)
def secret_scan_responses(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scanner]:
    """Every chalice.test.Client response of the test goes through the scanner."""
    from chalice.test import TestHTTPClient

    test = request.node.nodeid
    _HANDLER.test = test
    monkeypatch.setattr(TestHTTPClient, "request", wrap_request(SCANNER, TestHTTPClient.request, lambda: test))
    yield SCANNER
    _HANDLER.test = "(outside tests)"


def scan_stack_logs(scanner: Scanner, base: Path) -> int:
    """The end-to-end stacks' logs (the service's JSON log lines), less make run's banner."""
    count = 0
    for log in sorted(base.rglob("stack*.log")):
        count += 1
        lines = log.read_text(errors="replace").splitlines()
        text = "\n".join(line for line in lines if not BANNER.match(line))
        scanner.check(f"the local stack's log {log.name} ({log.parent.name})", text)
    return count


_WORKER_LEAKS = "secret_scan_leaks"
_workers_reported = False


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: a worker ended; its leaks join the run's."""
    global _workers_reported
    _workers_reported = True
    for leak in getattr(node, "workeroutput", {}).get(_WORKER_LEAKS, []):
        if len(SCANNER.leaks) < MAX_REPORTED:
            SCANNER.leaks.append(f"{leak} [{getattr(getattr(node, 'gateway', None), 'id', 'a worker')}]")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None) if factory is not None else None
    if base is not None and Path(base).exists() and not _workers_reported:
        # each worker (pytest-xdist) scans the stacks it started, under its own temporary directory
        scan_stack_logs(SCANNER, Path(base))
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller reports and fails the run
        workeroutput[_WORKER_LEAKS] = list(SCANNER.leaks)
        return
    if not SCANNER.leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["secret scan: secrets leaked into responses or logs (values redacted):"]
    lines += [f"  - {leak}" for leak in SCANNER.leaks]
    if reporter is not None:
        reporter.write_sep("=", "secret scan failed", red=True)
        for line in lines:
            reporter.write_line(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
