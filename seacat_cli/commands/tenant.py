"""``seacat tenant``: list the tenants (operator), create a tenant (its CA key generated or imported), show it,
change its configuration, make a new approve-webhook secret."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.core import Cli, action, pairs, quote, read_input, subcommands, table

NAME = "tenant"
HELP = "list, create, show and configure tenants"

ON_OFF = {"on": True, "off": False, "yes": True, "no": False, "true": True, "false": False}


def _switch(text: str) -> bool:
    try:
        return ON_OFF[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"on or off, not {text!r}") from None


def _config_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("configuration (docs/operations.md)")
    g.add_argument("--seacat", type=_switch, metavar="on|off", help="the SeaCat client routes (seacat=yes)")
    approve = g.add_mutually_exclusive_group()
    approve.add_argument("--approve", metavar="URL", help="the approve webhook (https on a public host)")
    approve.add_argument("--no-approve", action="store_true", help="remove the approve webhook")
    g.add_argument("--manual-approval", type=_switch, metavar="on|off", help="CRs wait for an administrator")
    g.add_argument("--approve-renewals", type=_switch, metavar="on|off", help="renewals go through approval too")
    g.add_argument("--webhook-timeout", type=float, metavar="SECONDS", help="seconds to wait for the webhook")
    g.add_argument("--lifetime-days", type=int, metavar="DAYS", help="lifetime of issued client certificates")
    base = g.add_mutually_exclusive_group()
    base.add_argument("--public-base-url", metavar="URL", help="this service's public URL (CRL distribution points)")
    base.add_argument("--no-public-base-url", action="store_true", help="remove the public base URL")


def config_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.seacat is not None:
        body["seacat"] = args.seacat
    if args.approve is not None or args.no_approve:
        body["approve"] = None if args.no_approve else args.approve
    if args.manual_approval is not None:
        body["manualApproval"] = args.manual_approval
    if args.approve_renewals is not None:
        body["approveRenewals"] = args.approve_renewals
    if args.webhook_timeout is not None:
        body["webhookTimeout"] = args.webhook_timeout
    if args.lifetime_days is not None:
        body["lifetimeDays"] = args.lifetime_days
    if args.public_base_url is not None or args.no_public_base_url:
        body["publicBaseUrl"] = None if args.no_public_base_url else args.public_base_url
    return body


CA_COLUMNS = [
    ("id", "ID"),
    ("state", "STATE"),
    ("notAfter", "NOT AFTER"),
    ("daysToExpiry", "DAYS LEFT"),
    ("certificates", "CERTIFICATES"),
    ("subject", "SUBJECT"),
]


def show_tenant(answer: dict[str, Any], out: TextIO) -> None:
    config = answer.get("config") or {}
    pairs(
        [
            ("tenant", answer.get("tenant")),
            ("key fingerprint", answer.get("keyFingerprint")),
            ("key imported", answer.get("keyImported")),
            ("active CA", answer.get("activeCa")),
            *[(name, value) for name, value in config.items()],
        ],
        out,
    )
    if answer.get("webhookSecret"):
        out.write(f"webhook secret (shown once, keep it now): {answer['webhookSecret']}\n")
    if answer.get("cas"):
        out.write("\n")
        table(answer["cas"], CA_COLUMNS, out)


def _list(cli: Cli) -> int:
    answer = cli.api.json("GET", "/tenants")
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        from seacat_cli.core import UNAVAILABLE, CliError

        raise CliError(UNAVAILABLE, "GET /tenants: the answer is not a list of tenants")
    cli.emit(items, lambda out: table(items, [("tenant", "TENANT")], out) if items else out.write("no tenant\n"))
    return 0


def _create(cli: Cli) -> int:
    body = config_body(cli.args)
    if cli.args.private_key_file:
        body["privateKey"] = read_input(cli.args.private_key_file).decode("ascii", "replace")
    response = cli.api.request("PUT", f"/tenants/{quote(cli.args.tenant)}", body=body)
    answer = response.json()
    if response.status == 200:
        cli.note(f"tenant {cli.args.tenant} existed already: its configuration was merged")
    cli.emit(answer, lambda out: show_tenant(answer, out))
    return 0


def _show(cli: Cli) -> int:
    answer = cli.api.json("GET", f"/tenants/{quote(cli.args.tenant)}")
    cli.emit(answer, lambda out: show_tenant(answer, out))
    return 0


def _set(cli: Cli) -> int:
    body = config_body(cli.args)
    if not body:
        from seacat_cli.core import usage

        raise usage("nothing to change: give at least one configuration option (seacat tenant set --help)")
    path = f"/tenants/{quote(cli.args.tenant)}"
    cli.api.request("GET", path)  # a PUT would create it: `set` changes an existing tenant only (else exit 3)
    answer = cli.api.json("PUT", path, body=body)
    cli.emit(answer, lambda out: show_tenant(answer, out))
    return 0


def _webhook_secret(cli: Cli) -> int:
    answer = cli.api.json("POST", f"/{quote(cli.args.tenant)}/webhook/secret")
    cli.emit(answer, lambda out: out.write(f"webhook secret (shown once, keep it now): {answer['webhookSecret']}\n"))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    action(sub, "list", "every tenant's id, sorted (an operator token is needed)", common, _list)
    p = action(
        sub, "create", "create a tenant (idempotent; an existing one gets the configuration merged)", common, _create
    )
    p.add_argument("tenant")
    p.add_argument(
        "--private-key-file", metavar="PEM", help='the CA key to import (EC P-256, PEM; "-": stdin); default: generated'
    )
    _config_options(p)
    p = action(sub, "show", "a tenant's configuration and CA certificates", common, _show)
    p.add_argument("tenant")
    p = action(sub, "set", "change an existing tenant's configuration", common, _set)
    p.add_argument("tenant")
    _config_options(p)
    p = action(sub, "webhook-secret", "a new approve-webhook signing secret, shown once", common, _webhook_secret)
    p.add_argument("tenant")
