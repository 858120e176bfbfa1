"""``seacat token``: tenant-scoped admin tokens (operator tokens only): create (shown once), list,
revoke."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.commands.est import lifetime
from seacat_cli.core import Cli, action, add_paging, pairs, quote, subcommands, table

NAME = "token"
HELP = "tenant-scoped admin tokens (an operator token is needed)"

COLUMNS = [
    ("tokenId", "TOKEN ID"),
    ("state", "STATE"),
    ("createdAt", "CREATED"),
    ("expiresAt", "EXPIRES"),
    ("revokedAt", "REVOKED"),
    ("label", "LABEL"),
]


def _create(cli: Cli) -> int:
    body: dict[str, Any] = {"tenant": cli.args.tenant}
    if cli.args.label:
        body["label"] = cli.args.label
    if cli.args.expires_in is not None:
        body["expiresIn"] = cli.args.expires_in
    answer = cli.api.json("POST", "/tokens", body=body)

    def human(out: TextIO) -> None:
        pairs(
            [
                ("token id", answer.get("tokenId")),
                ("tenant", answer.get("tenant")),
                ("label", answer.get("label")),
                ("expires", answer.get("expiresAt") or "never (until revoked)"),
            ],
            out,
        )
        out.write(f"token (shown once, keep it now): {answer.get('token')}\n")

    cli.emit(answer, human)
    return 0


def _list(cli: Cli) -> int:
    items = [
        {k: v for k, v in t.items() if k != "token"}
        for t in cli.pages("/tokens", {"tenant": cli.args.tenant}, "tokens")
    ]
    cli.emit(items, lambda out: table(items, COLUMNS, out) if items else out.write("no token\n"))
    return 0


def _revoke(cli: Cli) -> int:
    answer = cli.api.json("DELETE", f"/tokens/{quote(cli.args.token_id)}")
    cli.emit(answer, lambda out: out.write(f"token {cli.args.token_id} revoked\n"))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "create", "a token for one tenant; printed once", common, _create)
    p.add_argument("tenant")
    p.add_argument("--label", help="what the token is for (shown in the audit trail)")
    p.add_argument(
        "--expires-in",
        type=lifetime,
        metavar="DURATION",
        help="it stops working after this: seconds, or 30m, 12h, 7d (at most 366d); default: until revoked",
    )
    p = action(sub, "list", "the tenant's tokens, newest first, with their states (never a token)", common, _list)
    p.add_argument("tenant")
    add_paging(p)
    p = action(sub, "revoke", "revoke a token by its id (it stops working at once)", common, _revoke)
    p.add_argument("token_id", metavar="TOKEN_ID")
