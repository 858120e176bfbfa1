"""``seacat ca``: a tenant's CA certificates: list, create from the JSON spec, rotate, import an existing
one, retire, revoke, download the bundle."""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any, TextIO

from seacat_cli.commands.tenant import CA_COLUMNS
from seacat_cli.core import Cli, action, pairs, quote, read_input, subcommands, table, usage, write_output

NAME = "ca"
HELP = "a tenant's CA certificates"

REASONS = (
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
    "aACompromise",
)


def _spec(path: str) -> dict[str, Any]:
    try:
        spec = json.loads(read_input(path))
    except ValueError as error:
        raise usage(f"{path} is not JSON: {error}") from None
    if not isinstance(spec, dict):
        raise usage(f"{path} must hold a JSON object (the certificate spec, docs/api.md)")
    return spec


def certificate_pem(data: bytes, source: str) -> str:
    """A certificate file (PEM or DER) as PEM text, checked to be exactly one certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        if data.lstrip().startswith(b"-----"):
            found = x509.load_pem_x509_certificates(data)
        else:
            found = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise usage(f"{source} is not a certificate (PEM or DER)") from None
    if len(found) != 1:
        raise usage(f"{source} holds {len(found)} certificates: give the CA certificate alone")
    return found[0].public_bytes(Encoding.PEM).decode("ascii")


def show_created(answer: dict[str, Any], out: TextIO) -> None:
    pairs(
        [
            ("ca_cert", answer.get("ca_cert")),
            ("subject", answer.get("subject")),
            ("serial", answer.get("serialNumber")),
            ("not before", answer.get("notBefore")),
            ("not after", answer.get("notAfter")),
            *([("key fingerprint", answer["keyFingerprint"])] if "keyFingerprint" in answer else []),
        ],
        out,
    )


def _list(cli: Cli) -> int:
    answer = cli.api.json("GET", f"/tenants/{quote(cli.args.tenant)}")
    cas = answer.get("cas") or []
    cli.emit(cas, lambda out: table(cas, CA_COLUMNS, out) if cas else out.write("no CA certificate\n"))
    return 0


def _create(cli: Cli) -> int:
    answer = cli.api.json("PUT", f"/{quote(cli.args.tenant)}/x509/self-signed", body=_spec(cli.args.spec))
    cli.emit(answer, lambda out: show_created(answer, out))
    return 0


def _rotate(cli: Cli) -> int:
    body = _spec(cli.args.spec)
    if cli.args.curve:
        body["curve"] = cli.args.curve
    if cli.args.private_key_file:
        body["privateKey"] = read_input(cli.args.private_key_file).decode("ascii", "replace")
    answer = cli.api.json("POST", f"/{quote(cli.args.tenant)}/x509/ca/rotate", body=body)
    cli.emit(answer, lambda out: show_created(answer, out))
    cli.note("render every gateway again and reload it: `seacat gateway render ...`, then nginx -s reload")
    return 0


def _import(cli: Cli) -> int:
    pem = certificate_pem(read_input(cli.args.file), cli.args.file)
    response = cli.api.request("PUT", f"/{quote(cli.args.tenant)}/x509/ca/import", body={"certificate": pem})
    answer = response.json()
    if response.status == 200:
        cli.note("the tenant has this CA certificate already: nothing changed")
    cli.emit(answer, lambda out: show_created(answer, out))
    return 0


def _change(cli: Cli, verb: str, body: dict[str, Any]) -> int:
    answer = cli.api.json("PUT", f"/{quote(cli.args.tenant)}/x509/ca/{quote(cli.args.ca_id)}/{verb}", body=body)

    def human(out: TextIO) -> None:
        ca = answer.get("ca") or {}
        pairs(
            [
                ("CA certificate", ca.get("id")),
                ("state", ca.get("state")),
                ("changed now", answer.get("changed")),
                ("client certificates refused", answer.get("certificatesRefused")),
                ("key deletion scheduled", answer.get("keyDeletionScheduled")),
            ],
            out,
        )

    cli.emit(answer, human)
    return 0


def _retire(cli: Cli) -> int:
    return _change(cli, "retire", {"force": True} if cli.args.force else {})


def _revoke(cli: Cli) -> int:
    return _change(cli, "revoke", {"reason": cli.args.reason} if cli.args.reason else {})


def _bundle(cli: Cli) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    response = cli.api.request("GET", f"/{quote(cli.args.tenant)}/x509/ca", accept="application/x-pem-file", auth=False)
    if cli.args.out or not cli.as_json:
        write_output(cli.args.out, response.body, cli.out)
    if cli.args.out:
        cli.note(f"wrote {cli.args.out}")
    if cli.as_json:
        ids = [
            f"{cli.args.tenant}:{hashlib.sha384(cert.public_bytes(Encoding.DER)).hexdigest()}"
            for cert in x509.load_pem_x509_certificates(response.body)
        ]
        cli.emit({"certificates": ids, "pem": response.body.decode("ascii")}, lambda out: None)
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "list", "the tenant's CA certificates with their states and expiry", common, _list)
    p.add_argument("tenant")
    p = action(sub, "create", "a self-signed CA certificate over the active key from a JSON spec", common, _create)
    p.add_argument("tenant")
    p.add_argument("--spec", required=True, metavar="FILE", help='the JSON certificate spec ("-": stdin)')
    p = action(sub, "rotate", "a new CA key and its certificate, made active", common, _rotate)
    p.add_argument("tenant")
    p.add_argument("--spec", required=True, metavar="FILE", help='the JSON certificate spec ("-": stdin)')
    p.add_argument("--curve", choices=("P-256", "P-384"), help="the new key's curve (default P-256)")
    p.add_argument("--private-key-file", metavar="PEM", help="import this key instead of generating one")
    p = action(sub, "import", "an existing CA certificate over the tenant's key, made active", common, _import)
    p.add_argument("tenant")
    p.add_argument("file", help='the CA certificate, PEM or DER ("-": stdin)')
    p = action(sub, "retire", "take a trusted CA certificate out of the bundle", common, _retire)
    p.add_argument("tenant")
    p.add_argument("ca_id", metavar="CA_ID", help="TENANT:<id> or the 96-hex id")
    p.add_argument("--force", action="store_true", help="even while client certificates depend on it")
    p = action(sub, "revoke", "a compromised CA key: its CA certificates and all they issued", common, _revoke)
    p.add_argument("tenant")
    p.add_argument("ca_id", metavar="CA_ID", help="TENANT:<id> or the 96-hex id")
    p.add_argument("--reason", choices=REASONS, help="RFC 5280 reason (default cACompromise)")
    p = action(sub, "bundle", "the public CA bundle (PEM), as gateways get it", common, _bundle)
    p.add_argument("tenant")
    p.add_argument("--out", metavar="FILE", help="write it here (default: stdout)")
