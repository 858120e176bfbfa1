"""``seacat cert``: one certificate: its metadata, revoke it, download it (PEM or DER)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.commands.ca import REASONS
from seacat_cli.core import Cli, action, pairs, quote, subcommands, write_output

NAME = "cert"
HELP = "certificates: show, revoke, download"


def show_certificate(answer: dict[str, Any], out: TextIO) -> None:
    revoked = answer.get("revoked")
    pairs(
        [
            ("id", answer.get("id")),
            ("subject", answer.get("subject")),
            ("issuer", answer.get("issuer")),
            ("serial", answer.get("serialNumber")),
            ("not before", answer.get("notBefore")),
            ("not after", answer.get("notAfter")),
            ("status", answer.get("status")),
            ("revoked", f"{revoked.get('at')} ({revoked.get('reason')})" if isinstance(revoked, dict) else None),
            ("CA", answer.get("ca")),
            ("identity", answer.get("seacat_identity")),
            ("issued by", answer.get("issuer_ca")),
        ],
        out,
    )


def _path(cli: Cli) -> str:
    return f"/{quote(cli.args.tenant)}/x509/cert/{quote(cli.args.id)}"


def _show(cli: Cli) -> int:
    answer = cli.api.json("GET", _path(cli))
    cli.emit(answer, lambda out: show_certificate(answer, out))
    return 0


def _revoke(cli: Cli) -> int:
    body = {"reason": cli.args.reason} if cli.args.reason else {}
    answer = cli.api.json("PUT", _path(cli) + "/revoke", body=body)
    cli.emit(answer, lambda out: show_certificate(answer, out))
    return 0


def _download(cli: Cli) -> int:
    kind = "application/pkix-cert" if cli.args.der else "application/x-pem-file"
    response = cli.api.request("GET", _path(cli), accept=kind)
    write_output(cli.args.out, response.body, cli.out)
    if cli.args.out:
        if cli.as_json:
            cli.emit({"out": cli.args.out, "format": "der" if cli.args.der else "pem"}, lambda out: None)
        else:
            cli.note(f"wrote {cli.args.out}")
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "show", "a certificate's metadata", common, _show)
    p.add_argument("tenant")
    p.add_argument("id", help="96-hex SHA-384 of the DER, or TENANT:<id>")
    p = action(sub, "revoke", "revoke a certificate (idempotent)", common, _revoke)
    p.add_argument("tenant")
    p.add_argument("id")
    p.add_argument("--reason", choices=REASONS, help="RFC 5280 reason (default unspecified)")
    p = action(sub, "download", "the certificate itself, PEM (default) or DER", common, _download)
    p.add_argument("tenant")
    p.add_argument("id")
    p.add_argument("--der", action="store_true", help="DER instead of PEM")
    p.add_argument("--out", metavar="FILE", help="write it here (default: stdout)")
