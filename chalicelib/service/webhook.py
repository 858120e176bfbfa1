"""The tenant's approve webhook: POST the CR document, approve only on JSON {"result": "OK"}.

Fail closed: anything but that answer refuses (a 2xx with another body) or fails (no answer,
a non-2xx status, a timeout, a redirect, a connection error).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

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


def _call(url: str, payload: dict[str, object], timeout: float) -> WebhookVerdict:
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # a redirect is not an answer

    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "SeaCat-PKI-serverless"},
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        return WebhookVerdict(False, True, f"webhook answered HTTP {exc.code}")
    except TimeoutError:
        return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
        return WebhookVerdict(False, True, f"webhook unreachable ({type(reason).__name__})")
    if not 200 <= status < 300:
        return WebhookVerdict(False, True, f"webhook answered HTTP {status}")
    if len(body) > MAX_ANSWER:
        return WebhookVerdict(False, False, "webhook answer is too large")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return WebhookVerdict(False, False, "webhook answer is not JSON")
    if isinstance(answer, dict) and answer.get("result") == "OK":
        return WebhookVerdict(True, False, "approved by webhook")
    return WebhookVerdict(False, False, "refused by webhook")
