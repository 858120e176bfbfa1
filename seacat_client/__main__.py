"""Command line: ``python -m seacat_client {enroll,identity,get,pem} ...``.

Exit status 0 on success, 1 on any failure (message on stderr), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .cr import default_attributes
from .identity import (
    CERT_PEM_FILE,
    DEFAULT_APPLICATION,
    DEFAULT_TIMEOUT,
    KEY_FILE,
    EnrollError,
    SeaCatClientError,
    enroll,
    get_certificate,
    identity_of_public_key,
    load_key,
    write_pem,
)

PROG = "seacat_client"
BODY_PREVIEW = 300


def _attribute(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="HTTP timeout in seconds")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cafile", metavar="PEM", help="trust these CA certificates for https")
    group.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="SeaCat G3-compatible PKI client.")
    commands = parser.add_subparsers(dest="command", required=True)

    p_enroll = commands.add_parser("enroll", help="enrol or renew this device's certificate")
    p_enroll.add_argument("--api-url", required=True, help="https://host/<tenant>/seacat")
    p_enroll.add_argument("--dir", required=True, type=Path, help="state directory (key and certificate)")
    p_enroll.add_argument("--application", default=DEFAULT_APPLICATION, help="application name sent in the CR")
    p_enroll.add_argument(
        "--attribute",
        action="append",
        type=_attribute,
        metavar="KEY=VALUE",
        help="extra CR attribute, sent after OS=<platform.system()> and Client=python (repeatable)",
    )
    p_enroll.add_argument("--force", action="store_true", help="enrol even if the certificate needs no renewal")
    _add_tls_options(p_enroll)

    p_identity = commands.add_parser("identity", help="print this device's identity")
    p_identity.add_argument("--dir", required=True, type=Path)

    p_get = commands.add_parser("get", help="fetch a peer's certificate by identity")
    p_get.add_argument("--api-url", required=True)
    p_get.add_argument("identity")
    p_get.add_argument("--out", type=Path, help="write the DER here (default: print PEM)")
    _add_tls_options(p_get)

    p_pem = commands.add_parser("pem", help="write seacat_cert.pem and print it")
    p_pem.add_argument("--dir", required=True, type=Path)
    return parser


def _preview(body: bytes) -> str:
    text = body[:BODY_PREVIEW].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text + ("..." if len(body) > BODY_PREVIEW else "")


def _run(args: argparse.Namespace) -> int:
    if args.command == "enroll":
        result = enroll(
            args.api_url,
            args.dir,
            application=args.application,
            attributes=[*default_attributes(), *(args.attribute or [])],
            force=args.force,
            timeout=args.timeout,
            cafile=args.cafile,
            insecure=args.insecure,
        )
        cert = result.certificate
        print(f"status: {'enrolled' if result.requested else 'up to date (no request made)'}")
        # The id the PKI's admin routes take (GET/PUT /<tenant>/x509/cert/<id>[/revoke]): SHA-384 of the DER.
        cert_id = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        write_pem(args.dir)  # what curl, openssl and NGINX take beside seacat_key.pem
        print(f"identity: {result.identity}")
        print(f"status: {'enrolled' if result.requested else 'up to date (no request made)'}")
        print(f"id: {cert_id}")
        print(f"serial: {cert.serial_number:x}")
        print(f"not_after: {cert.not_valid_after_utc.isoformat()}")
        print(f"certificate: {result.cert_path} (DER); {Path(args.dir) / CERT_PEM_FILE} (PEM)")
        print(f"key: {Path(args.dir) / KEY_FILE} (PEM)")
        return 0
    if args.command == "identity":
        key = load_key(args.dir)
        if key is None:
            raise SeaCatClientError(f"no key in {args.dir} (run enroll first)")
        print(identity_of_public_key(key.public_key()))
        return 0
    if args.command == "get":
        certificate, der = get_certificate(
            args.api_url, args.identity, timeout=args.timeout, cafile=args.cafile, insecure=args.insecure
        )
        if args.out is not None:
            args.out.write_bytes(der)
            print(f"{args.identity}: serial {certificate.serial_number:x} written to {args.out}")
        else:
            sys.stdout.write(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        return 0
    if args.command == "pem":
        sys.stdout.write(write_pem(args.dir))
        return 0
    raise AssertionError(f"unhandled command {args.command}")  # argparse prevents this


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except EnrollError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        if error.body:
            print(f"{PROG}: response body: {_preview(error.body)}", file=sys.stderr)
        return 1
    except (SeaCatClientError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
