"""Operator command line: tenant-scoped tokens over the admin API, and the first operator token.

    python -m scripts.admin --url URL token create TENANT [--label TEXT]
    python -m scripts.admin --url URL token revoke TOKEN_ID
    python -m scripts.admin bootstrap-operator-token        # writes to the stage's DynamoDB table
    python -m scripts.admin index-tokens                    # once after upgrading: list the older tokens

The admin token is read from SEACAT_ADMIN_TOKEN (never from the command line, where other users of
the machine could read it in the process list).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def _call(url: str, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    token = os.environ.get("SEACAT_ADMIN_TOKEN")
    if not token:
        raise SystemExit("set SEACAT_ADMIN_TOKEN to an operator token")
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.admin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("SEACAT_URL", "http://127.0.0.1:8080"), help="service URL")
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="tenant-scoped admin tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token for one tenant; it is printed once")
    create.add_argument("tenant")
    create.add_argument("--label")
    revoke = token.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    sub.add_parser(
        "bootstrap-operator-token",
        help="create an operator token directly in the stage's tables (first deployment); needs AWS credentials",
    )
    sub.add_parser(
        "index-tokens",
        help="make the tenant tokens created before GET /tokens existed appear in it (once, after the upgrade); "
        "needs AWS credentials that may scan the stage's tokens table",
    )
    args = parser.parse_args(argv)

    if args.command == "index-tokens":
        from chalicelib.store import tokens as stored_tokens

        print(json.dumps({"indexed": stored_tokens.index_unlisted()}))
        return 0

    if args.command == "bootstrap-operator-token":
        import secrets

        from chalicelib.service import tokens

        value = f"sct_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
        token_id = tokens.install_operator_token(value)
        print(json.dumps({"tokenId": token_id, "token": value}))
        return 0
    if args.action == "create":
        body: dict[str, object] = {"tenant": args.tenant}
        if args.label:
            body["label"] = args.label
        status, answer = _call(args.url, "POST", "/tokens", body)
    else:
        status, answer = _call(args.url, "DELETE", f"/tokens/{args.token_id}")
    print(json.dumps(answer, indent=2))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
