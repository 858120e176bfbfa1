"""``seacat identity``: a SeaCat identity's status and certificates; block, unblock, revoke."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.commands.ca import REASONS
from seacat_cli.core import Cli, action, add_paging, pairs, quote, subcommands, table

NAME = "identity"
HELP = "SeaCat identities: status, certificates, block, unblock, revoke"

CERT_COLUMNS = [
    ("_id", "ID"),
    ("serialNumber", "SERIAL"),
    ("notBefore", "NOT BEFORE"),
    ("notAfter", "NOT AFTER"),
    ("status", "STATUS"),
]


def show_identity(answer: dict[str, Any], out: TextIO) -> None:
    revoked = answer.get("revoked")
    pairs(
        [
            ("identity", answer.get("identity")),
            ("tenant", answer.get("tenant")),
            ("application", answer.get("application")),
            ("approved", answer.get("approved")),
            ("blocked", answer.get("blocked")),
            ("revoked", f"{revoked.get('at')} ({revoked.get('reason')})" if isinstance(revoked, dict) else None),
            ("certificate", answer.get("certificate")),
            ("not after", answer.get("notAfter")),
            ("certificates", answer.get("certificates")),
        ],
        out,
    )


def _path(cli: Cli) -> str:
    return f"/{quote(cli.args.tenant)}/seacat/identity/{quote(cli.args.identity)}"


def _show(cli: Cli) -> int:
    answer = cli.api.json("GET", _path(cli))
    if cli.args.certificates:
        answer = {**answer, "certificateList": list(cli.pages(_path(cli) + "/certificates", {}, "certificates"))}

    def human(out: TextIO) -> None:
        show_identity(answer, out)
        if cli.args.certificates and answer["certificateList"]:
            out.write("\n")
            table(answer["certificateList"], CERT_COLUMNS, out)

    cli.emit(answer, human)
    return 0


def _set(cli: Cli, verb: str) -> int:
    answer = cli.api.json("PUT", f"{_path(cli)}/{verb}")
    cli.emit(answer, lambda out: show_identity(answer, out))
    return 0


def _revoke(cli: Cli) -> int:
    answer = cli.api.json("PUT", f"{_path(cli)}/revoke", body={"reason": cli.args.reason} if cli.args.reason else {})

    def human(out: TextIO) -> None:
        show_identity(answer.get("identity") or {}, out)
        out.write(f"certificates revoked: {len(answer.get('certificates') or [])}\n")

    cli.emit(answer, human)
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "show", "an identity's status", common, _show)
    p.add_argument("tenant")
    p.add_argument("identity", help="16 characters of A-Z and 2-7")
    p.add_argument("--certificates", action="store_true", help="its certificates too, newest first")
    add_paging(p)
    for verb, text in (
        ("block", "block: refused at enrolment, renewal and the gateway"),
        ("unblock", "unblock"),
    ):
        p = action(sub, verb, text, common, lambda cli, verb=verb: _set(cli, verb))  # type: ignore[misc]
        p.add_argument("tenant")
        p.add_argument("identity")
    p = action(sub, "revoke", "revoke the identity and all its certificates", common, _revoke)
    p.add_argument("tenant")
    p.add_argument("identity")
    p.add_argument("--reason", choices=REASONS, help="RFC 5280 reason")
