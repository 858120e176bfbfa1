"""Structured logs, CloudWatch embedded-format metrics, and the request context they share.

One JSON object per line on stdout (what Lambda ships to CloudWatch Logs), stdlib logging only:
Powertools' Logger costs ~100 ms of import on a cold start, more than this needs. Fields come
from the request context (request id, route, tenant, actor) and from ``extra=``. Never pass keys,
tokens or whole CRs: log ids, identities and fingerprints.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping

# Never mutated in place: each change sets a new mapping, so requests never share one.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "seacat_request", default=MappingProxyType({})
)

# LogRecord attributes that are plumbing, not fields.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_FIELDS = ("request_id", "route", "method", "tenant", "actor")


def bind(**fields: Any) -> None:
    """Add fields to the current request's log context."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def begin_request(**fields: Any) -> contextvars.Token[Mapping[str, Any]]:
    return _context.set({k: v for k, v in fields.items() if v is not None})


def end_request(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


def context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "seacat-pki", stage: str = "") -> None:
        super().__init__()
        self.service = service
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        if self.stage:
            entry["stage"] = self.stage
        entry.update(_context.get())
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # the class only: messages can echo input
        return json.dumps(entry, default=str, separators=(",", ":"))


_configured = False


def setup_logging(level: str, stage: str) -> None:
    """Route the service's loggers to stdout as JSON lines (idempotent)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(stage=stage))
    root = logging.getLogger("seacat")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = True  # tests capture through the root logger too
    for noisy in ("botocore", "boto3", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


# -- metrics: CloudWatch embedded metric format (EMF) -------------------------------------------

NAMESPACE = "SeaCatPKI"
_metrics_out = logging.getLogger("seacat.metrics")


def metric(name: str, value: float = 1.0, *, unit: str = "Count", **dimensions: str) -> None:
    """Emit one EMF record; CloudWatch turns it into a metric without any API call."""
    from chalicelib.settings import get_settings

    dims = {"Stage": get_settings().stage, **dimensions}
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [sorted(dims)], "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        **dims,
        name: value,
    }
    # A plain line, not through the JSON formatter: EMF must be the whole log event.
    if _metrics_out.isEnabledFor(logging.INFO):
        print(json.dumps(record, separators=(",", ":")), flush=False)
