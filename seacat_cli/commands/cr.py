"""``seacat cr``: the manual approval queue: pending certificate requests, one request, approve, reject."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.core import Cli, action, add_paging, pairs, quote, subcommands, table

NAME = "cr"
HELP = "certificate requests: the approval queue"

COLUMNS = [
    ("_id", "ID"),
    ("_c", "RECEIVED"),
    ("seacat_identity", "IDENTITY"),
    ("seacat_application", "APPLICATION"),
    ("state", "STATE"),
]


def show_request(answer: dict[str, Any], out: TextIO) -> None:
    info = answer.get("info") or {}
    attributes = info.get("attributes") or []
    pairs(
        [
            ("id", answer.get("_id")),
            ("tenant", answer.get("tenant")),
            ("identity", answer.get("seacat_identity")),
            ("application", answer.get("seacat_application")),
            ("state", answer.get("state")),
            ("reason", answer.get("reason")),
            ("received", answer.get("_c")),
            ("decided by", answer.get("decidedBy")),
            ("certificate", answer.get("certificate")),
            *[(f"attribute {k}", v) for k, v in (tuple(a) for a in attributes if len(a) == 2)],
        ],
        out,
    )


def _list(cli: Cli) -> int:
    items = list(cli.pages(f"/{quote(cli.args.tenant)}/seacat/cr", {"state": "pending"}, "requests"))
    cli.emit(items, lambda out: table(items, COLUMNS, out) if items else out.write("no pending request\n"))
    return 0


def _show(cli: Cli) -> int:
    answer = cli.api.json("GET", f"/{quote(cli.args.tenant)}/seacat/cr/{quote(cli.args.id)}")
    cli.emit(answer, lambda out: show_request(answer, out))
    return 0


def _decide(cli: Cli, verb: str) -> int:
    answer = cli.api.json("PUT", f"/{quote(cli.args.tenant)}/seacat/cr/{quote(cli.args.id)}/{verb}")
    request = answer.get("request") or {}
    cli.emit(
        answer,
        lambda out: out.write(
            f"request {request.get('_id')}: {request.get('state')} (identity {request.get('seacat_identity')})\n"
        ),
    )
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "list", "pending requests, oldest first", common, _list)
    p.add_argument("tenant")
    add_paging(p)
    p = action(sub, "show", "one request: identity, application, attributes, state", common, _show)
    p.add_argument("tenant")
    p.add_argument("id", help="the request id (96 hex digits)")
    for verb, text in (
        ("approve", "approve a pending request: the client's next enrolment with that key is issued"),
        ("reject", "reject a pending request"),
    ):
        p = action(sub, verb, text, common, lambda cli, verb=verb: _decide(cli, verb))  # type: ignore[misc]
        p.add_argument("tenant")
        p.add_argument("id", help="the request id (96 hex digits)")
