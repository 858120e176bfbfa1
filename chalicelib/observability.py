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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

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
    """A new request context; its ``_metrics`` list collects metrics for the access line."""
    context: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    context["_metrics"] = []
    return _context.set(context)


def end_request(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


def context() -> dict[str, Any]:
    return {k: v for k, v in _context.get().items() if k != "_metrics"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "seacat-pki", stage: str = "") -> None:
        super().__init__()
        self.service = service
        self.stage = stage
        self._second = -1
        self._stamp = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": self._timestamp(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        if self.stage:
            entry["stage"] = self.stage
        entry.update(_context.get())
        entry.pop("_metrics", None)
        for key, value in vars(record).items():  # the ``extra=`` fields, in their order
            if key not in _RESERVED and (key == "_aws" or not key.startswith("_")):
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
    # One JSON line per event: on Lambda (and in `chalice local`) the root logger has a handler of
    # its own that would print every line again in its text format.
    root.propagate = False
    # The JSON lines carry no source location, thread or process: do not collect them per record
    # (the knobs of the logging HOWTO's "Optimization" section; this process is the service's own).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for noisy in ("botocore", "boto3", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


# -- metrics: CloudWatch embedded metric format (EMF) -------------------------------------------
#
# Inside a request, a metric rides on the request's access-log line (one JSON line per request,
# which CloudWatch reads as both a log event and EMF metrics); outside one it is a line of its own.

NAMESPACE = "SeaCatPKI"
_metrics_out = logging.getLogger("seacat.metrics")


def metric(name: str, value: float = 1.0, *, unit: str = "Count", **dimensions: str) -> None:
    pending = _context.get().get("_metrics")
    if isinstance(pending, list):
        pending.append((name, value, unit, dimensions))
        return
    if _metrics_out.isEnabledFor(logging.INFO):
        print(json.dumps(emf([(name, value, unit, dimensions)]), separators=(",", ":")), flush=False)


def emf(metrics: list[tuple[str, float, str, dict[str, str]]]) -> dict[str, Any]:
    """The EMF fields for these metrics: the ``_aws`` directive plus dimension and metric values."""
    from chalicelib.settings import get_settings

    fields: dict[str, Any] = {"Stage": get_settings().stage}
    directives = []
    for name, value, unit, dimensions in metrics:
        fields.update(dimensions)
        fields[name] = value
        directives.append(
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["Stage", *sorted(dimensions)]],
                "Metrics": [{"Name": name, "Unit": unit}],
            }
        )
    return {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}, **fields}


def take_metrics() -> list[tuple[str, float, str, dict[str, str]]]:
    pending = _context.get().get("_metrics")
    return list(pending) if isinstance(pending, list) else []
