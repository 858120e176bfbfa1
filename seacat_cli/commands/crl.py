"""``seacat crl``: a tenant's CRL (the active CA's, or one CA certificate's): what it lists, or the file."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.core import UNAVAILABLE, Cli, CliError, action, pairs, quote, subcommands, table, write_output

NAME = "crl"
HELP = "certificate revocation lists"


def _fetch(cli: Cli) -> bytes:
    path = f"/{quote(cli.args.tenant)}/x509/crl" + (f"/{quote(cli.args.ca)}" if cli.args.ca else "")
    return cli.api.request("GET", path, accept="application/pkix-crl", auth=False).body


def summary(der: bytes) -> dict[str, Any]:
    from cryptography import x509

    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        raise CliError(UNAVAILABLE, "the service's answer is not a DER CRL") from None
    revoked = []
    for entry in crl:
        try:
            reason: str | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = None
        revoked.append(
            {
                "serialNumber": format(entry.serial_number, "x"),
                "revokedAt": entry.revocation_date_utc.isoformat(),
                "reason": reason,
            }
        )
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    return {
        "issuer": crl.issuer.rfc4514_string(),
        "crlNumber": number,
        "thisUpdate": crl.last_update_utc.isoformat(),
        "nextUpdate": crl.next_update_utc.isoformat() if crl.next_update_utc else None,
        "revoked": revoked,
    }


def _show(cli: Cli) -> int:
    shown = summary(_fetch(cli))

    def human(out: TextIO) -> None:
        pairs(
            [
                ("issuer", shown["issuer"]),
                ("CRL number", shown["crlNumber"]),
                ("this update", shown["thisUpdate"]),
                ("next update", shown["nextUpdate"]),
                ("revoked", len(shown["revoked"])),
            ],
            out,
        )
        if shown["revoked"]:
            out.write("\n")
            table(
                shown["revoked"], [("serialNumber", "SERIAL"), ("revokedAt", "REVOKED AT"), ("reason", "REASON")], out
            )

    cli.emit(shown, human)
    return 0


def _download(cli: Cli) -> int:
    der = _fetch(cli)
    summary(der)  # refuse to write what is not a CRL
    if cli.args.pem:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        data = x509.load_der_x509_crl(der).public_bytes(Encoding.PEM)
    else:
        data = der
    write_output(cli.args.out, data, cli.out)
    if cli.args.out != "-":
        if cli.as_json:
            cli.emit({"out": cli.args.out, "format": "pem" if cli.args.pem else "der"}, lambda out: None)
        else:
            cli.note(f"wrote {cli.args.out}")
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    for name, text, handler in (
        ("show", "what the CRL lists: issuer, updates, revoked serials", _show),
        ("download", "the CRL file (DER, or PEM with --pem)", _download),
    ):
        p = action(sub, name, text, common, handler)
        p.add_argument("tenant")
        p.add_argument("--ca", metavar="CA_ID", help="one CA certificate's CRL (default: the active CA's)")
        if name == "download":
            p.add_argument("--out", required=True, metavar="FILE", help='where to write it ("-": stdout)')
            p.add_argument("--pem", action="store_true", help="PEM instead of DER")
