"""``seacat token``: tenant-scoped admin tokens (operator tokens only): create (shown once), revoke."""

from __future__ import annotations

import argparse
from typing import TextIO

from seacat_cli.core import Cli, action, pairs, quote, subcommands

NAME = "token"
HELP = "tenant-scoped admin tokens (an operator token is needed)"


def _create(cli: Cli) -> int:
    body = {"tenant": cli.args.tenant, **({"label": cli.args.label} if cli.args.label else {})}
    answer = cli.api.json("POST", "/tokens", body=body)

    def human(out: TextIO) -> None:
        pairs(
            [("token id", answer.get("tokenId")), ("tenant", answer.get("tenant")), ("label", answer.get("label"))], out
        )
        out.write(f"token (shown once, keep it now): {answer.get('token')}\n")

    cli.emit(answer, human)
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
    p = action(sub, "revoke", "revoke a token by its id (it stops working at once)", common, _revoke)
    p.add_argument("token_id", metavar="TOKEN_ID")
