"""``seacat cert``: one certificate: its metadata, revoke it, download it (PEM or DER); sign a PKCS#10 CSR
under a profile."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from seacat_cli.commands.ca import REASONS
from seacat_cli.core import (
    PENDING,
    UNAVAILABLE,
    Cli,
    CliError,
    action,
    pairs,
    quote,
    read_input,
    subcommands,
    usage,
    write_output,
)

NAME = "cert"
HELP = "certificates: show, revoke, download, sign a CSR"


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
            ("identity", answer.get("seacat_identity") or answer.get("identity")),
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


def _csr(path: str) -> tuple[bytes, str]:
    """The CSR file (PEM or DER), checked to be one before anything is sent, with its Content-Type."""
    from cryptography import x509

    data = read_input(path)
    pem = data.lstrip().startswith(b"-----")
    try:
        x509.load_pem_x509_csr(data) if pem else x509.load_der_x509_csr(data)
    except ValueError:
        raise usage(f"{'standard input' if path == '-' else path} is not a PKCS#10 CSR (PEM or DER)") from None
    return data, "application/x-pem-file" if pem else "application/pkcs10"


def _sign(cli: Cli) -> int:
    response = cli.api.request(
        "POST",
        f"/{quote(cli.args.tenant)}/x509/sign",
        query={"profile": cli.args.profile},
        content=_csr(cli.args.csr_file),
    )
    answer = response.json()
    if not isinstance(answer, dict):
        raise CliError(UNAVAILABLE, "the service's answer is not a JSON object")
    if response.status == 202:
        # Nothing issued: an administrator decides (seacat cr approve); the same command again then
        # collects the certificate (the request id is the CSR's hash, so it is the same request).
        cli.emit(
            answer,
            lambda out: out.write(
                f"pending approval: request {answer.get('id')} (identity {answer.get('identity')}); "
                "run the same command again once it is approved\n"
            ),
        )
        return PENDING
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        certificate = x509.load_pem_x509_certificate(str(answer.get("certificate") or "").encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise CliError(UNAVAILABLE, "the service's answer holds no certificate") from None
    data = certificate.public_bytes(Encoding.DER if cli.args.format == "der" else Encoding.PEM)
    out_file = None if cli.args.out == "-" else cli.args.out
    if out_file:
        write_output(out_file, data, cli.out)
    if cli.as_json:
        cli.emit(answer, lambda out: None)
    elif out_file:
        show_certificate(answer, cli.out)
        cli.out.write(f"outcome: {answer.get('outcome')} (profile {answer.get('profile')})\n")
        cli.note(f"wrote {out_file}")
    else:  # the certificate on stdout, for a pipe or a redirection; what it is on stderr
        write_output(None, data, cli.out)
        cli.note(f"{answer.get('outcome')}: certificate {answer.get('id')} (identity {answer.get('identity')})")
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
    p = action(sub, "sign", "sign a PKCS#10 CSR under one of the tenant's profiles", common, _sign)
    p.add_argument("tenant")
    p.add_argument("csr_file", metavar="CSR_FILE", help='the CSR, PEM or DER ("-": standard input)')
    p.add_argument("--profile", required=True, help="the profile it is signed under (seacat profile list)")
    p.add_argument("--out", metavar="FILE", help="write the certificate here (default: stdout)")
    p.add_argument("--format", choices=("pem", "der"), default="pem", help="the certificate's encoding (default pem)")
