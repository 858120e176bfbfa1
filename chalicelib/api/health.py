"""Liveness: answers without touching AWS."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response

bp = Blueprint(__name__)


@bp.route("/health", methods=["GET"])
def health() -> Response:
    return json_response({"status": "ok"})
