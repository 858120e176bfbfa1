"""``GET /openapi.json``: the API contract (docs/openapi.yaml) as JSON, for the local server and tests.

The document is read with PyYAML at request time when ``docs/openapi.yaml`` is there: in a checkout
(``make run``, ``chalice local``, the tests). Only ``app.py`` and ``chalicelib/`` are deployed to
Lambda, so on AWS the file is absent and the route answers 404 with the usual JSON error body
(PyYAML is not a runtime dependency either: it is imported only when the file exists).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_errors, json_response
from chalicelib.errors import NotFound

bp = Blueprint(__name__)

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"

_cache: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def load_spec(path: Path = SPEC) -> Any:
    """The parsed document, re-read when the file changes; NotFound when there is none."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise NotFound("the API description is not deployed with the service; see docs/openapi.yaml") from None
    key = str(path)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    yaml: Any = importlib.import_module("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("r", encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=loader)
    with _lock:
        _cache[key] = (mtime, document)
    return document


@bp.route("/openapi.json", methods=["GET"])
@json_errors
def openapi() -> Response:
    """Public: this service's OpenAPI 3.1 description; 404 where docs/ is not deployed (AWS)."""
    return json_response(load_spec())
