"""What every command shares: the admin API client, the exit codes, output for people (tables) and for
scripts (``--json``), and paging with progress.

Standard library only (urllib): the command line installs with the package and needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# Exit codes (docs/cli.md): scripts test these.
OK = 0
API_ERROR = 1  # the service refused the request (4xx other than 404): bad input, conflict, no right
USAGE = 2  # bad arguments or local input (argparse's own code too): nothing was sent
NOT_FOUND = 3  # 404: no such tenant, CA, request, identity, certificate (or another tenant's)
UNAVAILABLE = 4  # 5xx, no answer, a network or TLS failure, an answer that is not what the API sends
PENDING = 5  # accepted but waiting for approval (202): nothing issued yet, the request id printed
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0
MAX_PAGE = 100  # the API's largest page
MAX_PAGES = 100_000  # a list longer than this is not followed further (a loop guard, never reached in use)
MAX_ANSWER = 64 * 1024 * 1024  # no admin answer comes near this (a page is 100 items, a CRL a few MB)
USER_AGENT = "seacat-cli/1"

URL_ENV = "SEACAT_URL"
TOKEN_ENV = "SEACAT_TOKEN"
TOKEN_FILE_ENV = "SEACAT_TOKEN_FILE"


class CliError(Exception):
    """A failure with its exit code and a message for stderr (and, with --json, a JSON body)."""

    def __init__(self, code: int, message: str, body: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = dict(body) if body is not None else {"error": "usage" if code == USAGE else "error"}
        self.body.setdefault("message", message)


class ApiError(CliError):
    def __init__(self, status: int, body: Mapping[str, object], method: str, path: str) -> None:
        code = NOT_FOUND if status == 404 else UNAVAILABLE if status >= 500 else API_ERROR
        message = str(body.get("message") or body.get("error") or "")
        where = f" (field {body['field']})" if body.get("field") else ""
        super().__init__(code, f"{method} {path}: {status} {message}{where}", {"status": status, **body})
        self.status = status


def usage(message: str) -> CliError:
    return CliError(USAGE, message)


# -- printing ---------------------------------------------------------------------------------------

# C0 and C1 controls and DEL (escape sequences, bells, carriage returns), and the Unicode format
# characters that reorder or split what is shown (bidi overrides and isolates, line separators).
_CONTROL = (
    {c: " " for c in range(32)}
    | {127: " "}
    | {c: " " for c in range(0x80, 0xA0)}
    | {c: " " for c in (0x200E, 0x200F, 0x2028, 0x2029, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


def clean(value: object) -> str:
    """A value as one line of plain text: what devices and callers chose (application names, CR
    attributes, subjects, server messages) never reaches the terminal as control sequences."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(clean(v) for v in value) or "-"
    return str(value).translate(_CONTROL)


def table(rows: Sequence[Mapping[str, object]], columns: Sequence[tuple[str, str]], out: TextIO) -> None:
    """Rows under headed columns ((key, heading) pairs), left-aligned, the last column unpadded."""
    if not rows:
        return
    cells = [[clean(row.get(key)) for key, _ in columns] for row in rows]
    headings = [heading for _, heading in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headings)]
    for line in [headings, *cells]:
        padded = [text.ljust(widths[i]) if i < len(line) - 1 else text for i, text in enumerate(line)]
        out.write("  ".join(padded).rstrip() + "\n")


def pairs(items: Sequence[tuple[str, object]], out: TextIO) -> None:
    """``name: value`` lines, the names aligned."""
    width = max((len(name) for name, _ in items), default=0)
    for name, value in items:
        out.write(f"{(name + ':').ljust(width + 1)} {clean(value)}\n")


# -- the API ----------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The admin API never redirects: following one would send the bearer token to another place."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CliError(UNAVAILABLE, f"the service's answer is not JSON: {clean(self.body[:120])!s}") from None


@dataclass
class Api:
    url: str
    token_source: Callable[[], str] | None  # read at the first call that needs it
    timeout: float = TIMEOUT
    _token: str | None = field(default=None, repr=False)
    _opener: urllib.request.OpenerDirector = field(default_factory=lambda: urllib.request.build_opener(_NoRedirect))

    def _authorization(self) -> dict[str, str]:
        if self.token_source is None:
            return {}
        if self._token is None:
            self._token = self.token_source()
        return {"Authorization": f"Bearer {self._token}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        accept: str = "application/json",
        auth: bool = True,
        content: tuple[bytes, str] | None = None,
    ) -> Response:
        """One call; a 4xx/5xx answer is raised as ApiError, a network failure as CliError(UNAVAILABLE).
        ``content`` is a body that is not JSON, with its Content-Type (a PKCS#10 CSR)."""
        target = self.url + path
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        if body is not None and "privateKey" in body and not _private_channel(self.url):
            raise usage(f"refusing to send a CA private key to {self.url} over plain http: use https (or the loopback)")
        if auth and self.token_source is not None and not _private_channel(self.url):
            # The bearer token is as strong as a CA key (an operator's rotates them): never in clear text.
            raise usage(f"refusing to send the admin token to {self.url} over plain http: use https (or the loopback)")
        headers = {"Accept": accept, "User-Agent": USER_AGENT, **(self._authorization() if auth else {})}
        data = json.dumps(body).encode("utf-8") if body is not None else None
        if content is not None:
            data, headers["Content-Type"] = content
        elif method != "GET":  # every admin write takes JSON; a bodyless one too (no server guesses a type)
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read(MAX_ANSWER + 1)
                if len(raw) > MAX_ANSWER:
                    raise CliError(UNAVAILABLE, f"{method} {path}: the answer is larger than {MAX_ANSWER} bytes")
                return Response(answer.status, raw, dict(answer.headers.items()))
        except urllib.error.HTTPError as error:
            raw = error.read(64 * 1024)
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                parsed = {"error": error.reason or "", "message": raw[:200].decode("utf-8", "replace")}
            if 300 <= error.code < 400:
                parsed = {"error": "redirect", "message": "the service answered with a redirect, not followed"}
                raise CliError(UNAVAILABLE, f"{method} {path}: {error.code}: {parsed['message']}", parsed) from None
            raise ApiError(error.code, parsed, method, path) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                UNAVAILABLE, f"{method} {self.url}{path}: {reason}", {"error": "unavailable", "message": str(reason)}
            ) from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


def quote(segment: str) -> str:
    """One path segment (a tenant, an id), so nothing a user types can reach another route."""
    if segment in ("", ".", ".."):
        raise usage(f"{segment!r} is not a tenant or an id")
    return urllib.parse.quote(segment, safe=":")


def _private_channel(url: str) -> bool:
    """https, or http to this machine: where a CA private key may travel."""
    import ipaddress

    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the command's context --------------------------------------------------------------------------


def read_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The bearer token: SEACAT_TOKEN, or the file --token-file / SEACAT_TOKEN_FILE names. Never from
    the command line (``ps`` shows argv to everyone); no message ever repeats it."""
    path = getattr(args, "token_file", None) or environ.get(TOKEN_FILE_ENV)
    value = environ.get(TOKEN_ENV)
    if path and value:
        raise usage(f"give the token either in {TOKEN_ENV} or in a file (--token-file, {TOKEN_FILE_ENV}), not both")
    if path:
        try:
            value = (sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")).strip()
        except (OSError, UnicodeDecodeError) as error:
            raise usage(f"cannot read the token file {path}: {getattr(error, 'strerror', None) or error}") from None
        source = f"the token file {path}"
    else:
        source = TOKEN_ENV
    if not value:
        raise usage(
            f"no admin token: set {TOKEN_ENV}, or --token-file PATH ({TOKEN_FILE_ENV}); "
            "make run prints one and keeps it in .seacat-local/operator-token"
        )
    token = value.strip()
    if not token.isascii() or not token.isprintable() or " " in token:
        raise usage(f"the token in {source} is not one: printable ASCII without spaces")
    return token


@dataclass
class Cli:
    """What a command handler gets: the parsed arguments, the API, and where to write."""

    args: argparse.Namespace
    environ: Mapping[str, str]
    out: TextIO
    err: TextIO
    api: Api

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(self, value: object, human: Callable[[TextIO], object]) -> None:
        """The answer: JSON for scripts, or what ``human`` writes for people."""
        if self.as_json:
            self.out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
        else:
            human(self.out)

    def note(self, message: str) -> None:
        """A line for people on stderr (never part of what scripts parse)."""
        self.err.write(clean(message) + "\n")

    def progress(self, message: str, *, final: bool = False) -> None:
        """One line rewritten in place on a terminal; nothing when stderr is not one."""
        if not self.err.isatty():
            return
        self.err.write("\r\033[K" + clean(message) + ("\n" if final else ""))
        self.err.flush()

    def pages(self, path: str, query: Mapping[str, object], what: str) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (``{"items", "next"}``), up to --limit or all with --all, fetching
        pages of at most 100 and telling a terminal how many came so far."""
        limit: int | None = None if getattr(self.args, "all", False) else getattr(self.args, "limit", 50)
        fetched = 0
        token: str | None = None
        seen: set[str] = set()
        shown = False
        try:
            for _ in range(MAX_PAGES):
                size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - fetched)
                if size <= 0:
                    return
                page = self.api.json("GET", path, query={**query, "limit": size, "next": token})
                items = page.get("items") if isinstance(page, dict) else None
                if not isinstance(items, list):
                    raise CliError(UNAVAILABLE, f"GET {path}: the answer is not a page of {what}")
                for item in items:
                    fetched += 1
                    yield item
                token = page.get("next")
                if token is not None and self.err.isatty():
                    self.progress(f"{fetched} {what} so far…")
                    shown = True
                if not token:
                    return
                if token in seen:
                    raise CliError(UNAVAILABLE, f"GET {path}: the service handed out the same page token twice")
                seen.add(token)
        finally:
            if shown:
                self.progress(f"{fetched} {what}", final=True)


def add_paging(parser: argparse.ArgumentParser, default: int = 50) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--limit", type=positive_int, default=default, help=f"at most N items (default {default})")
    group.add_argument("--all", action="store_true", help="every item, page after page (progress on a terminal)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def read_input(path: str) -> bytes:
    """A file's bytes, or standard input for ``-``."""
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise usage(f"cannot read {path}: {error.strerror or error}") from None


def write_output(path: str | None, data: bytes, out: TextIO) -> None:
    """To a file, or to stdout (bytes as they are: PEM, or DER for a pipe)."""
    if path is None or path == "-":
        out.flush()
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode("latin-1"))
        return
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise usage(f"cannot write {path}: {error.strerror or error}") from None


def service_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    url = str(getattr(args, "url", None) or environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise usage(f"the service URL must be http(s)://host[:port][/path], not {url!r}")
    return url


def environment() -> Mapping[str, str]:
    return os.environ


Handler = Callable[[Cli], int]


def subcommands(parser: argparse.ArgumentParser) -> Any:
    """The subcommands of a command (one of them is required)."""
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def action(
    sub: Any, name: str, help_: str, common: argparse.ArgumentParser, handler: Handler
) -> argparse.ArgumentParser:
    """One subcommand: its parser takes the common options and runs ``handler``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_, description=help_, parents=[common], allow_abbrev=False
    )
    parser.set_defaults(handler=handler)
    return parser
