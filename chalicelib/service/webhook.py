"""The tenant's approve webhook: POST the CR document, approve only on JSON {"result": "OK"}.

Fail closed: anything but that answer refuses (a 2xx with another body) or fails (no answer, a
non-2xx status, a redirect, something that is not HTTP, a timeout). The timeout bounds the whole
call, not each socket read: a webhook that drips its answer is cut off at the deadline.

Unless SEACAT_WEBHOOK_ALLOW_PRIVATE is set (the local and test stages), the webhook's host must
resolve to a public address: a tenant's admin sets the URL, and loopback, private, link-local or
otherwise reserved addresses would let it reach the service's own network. The connection goes to
the address that was checked (no second lookup a DNS answer could change in between).
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("seacat.webhook")

MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class WebhookVerdict:
    approved: bool
    failed: bool  # True: the webhook could not give an answer (retryable)
    reason: str


def call(url: str, payload: dict[str, object], timeout: float) -> WebhookVerdict:
    from chalicelib import observability

    started = time.perf_counter()
    verdict = _call(url, payload, timeout)
    observability.metric("WebhookLatency", (time.perf_counter() - started) * 1000, unit="Milliseconds")
    if verdict.failed:
        observability.metric("WebhookFailures")
    return verdict


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str, ssl.SSLContext | None]:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        https = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
        return https, path, context
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout), path, None


class NotPublic(Exception):
    """The webhook's host resolves to no public address (and private ones are not allowed)."""


def _connect(conn: http.client.HTTPConnection, context: ssl.SSLContext | None, allow_private: bool) -> None:
    """Open ``conn`` to an address of its host that passed the egress check (TLS with ``context``
    when given, verifying the host name)."""
    import ipaddress

    addresses = socket.getaddrinfo(conn.host, conn.port, type=socket.SOCK_STREAM)
    for _family, _type, _proto, _name, sockaddr in addresses:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if allow_private or address.is_global:
            break
    else:
        raise NotPublic(conn.host)
    sock = socket.create_connection((str(sockaddr[0]), int(sockaddr[1])), timeout=conn.timeout)
    conn.sock = context.wrap_socket(sock, server_hostname=conn.host) if context is not None else sock


def _call(url: str, payload: dict[str, object], timeout: float) -> WebhookVerdict:
    from chalicelib.settings import get_settings

    allow_private = get_settings().webhook_allow_private
    try:
        conn, path, context = _connection(url, timeout)
    except (ValueError, http.client.InvalidURL):
        return WebhookVerdict(False, True, "webhook URL is not usable")
    answers: queue.Queue[tuple[int, bytes] | BaseException] = queue.Queue(maxsize=1)
    # http.client drops conn.sock once an HTTP/1.0 answer starts; keep the socket to cut it off.
    sockets: list[socket.socket] = []

    def exchange() -> None:
        try:
            _connect(conn, context, allow_private)
            if conn.sock is not None:
                sockets.append(conn.sock)
            conn.request(
                "POST",
                path,
                body=json.dumps(payload).encode("utf-8"),
                headers={"Content-Type": "application/json", "User-Agent": "SeaCat-PKI-serverless"},
            )
            response = conn.getresponse()
            answers.put((response.status, response.read(MAX_ANSWER + 1)))
        except BaseException as exc:  # handed to the caller, who decides
            answers.put(exc)

    worker = threading.Thread(target=exchange, name="approve-webhook", daemon=True)
    worker.start()
    try:
        outcome = answers.get(timeout=timeout)
    except queue.Empty:
        # Cut the exchange off: shutting the socket down ends the worker's blocked read at once.
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.close()
        return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
    conn.close()
    if isinstance(outcome, NotPublic):
        return WebhookVerdict(False, True, "webhook host has no public address")
    if isinstance(outcome, TimeoutError):  # socket.timeout is TimeoutError
        return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
    if isinstance(outcome, (OSError, http.client.HTTPException)):
        return WebhookVerdict(False, True, f"webhook unreachable or not speaking HTTP ({type(outcome).__name__})")
    if isinstance(outcome, BaseException):
        return WebhookVerdict(False, True, f"webhook call failed ({type(outcome).__name__})")
    status, body = outcome
    if not 200 <= status < 300:
        return WebhookVerdict(False, True, f"webhook answered HTTP {status}")
    if len(body) > MAX_ANSWER:
        return WebhookVerdict(False, False, "webhook answer is too large")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return WebhookVerdict(False, False, "webhook answer is not JSON")
    if isinstance(answer, dict) and answer.get("result") == "OK":
        return WebhookVerdict(True, False, "approved by webhook")
    return WebhookVerdict(False, False, "refused by webhook")
