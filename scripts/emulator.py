"""The embedded AWS emulator: resources from infra/resources.yaml, deployed through CloudFormation.

Used by `make run` (moto in server mode on 127.0.0.1) and by the tests (moto in-process), so the
local run and AWS are built from one definition.

For `make run` the emulator's state is durable: ``JournalledApp`` wraps moto's server app, appends
every request that changes state to the data directory's journal (scripts/journal.py) before it
answers, and at start replays the journal into a fresh moto with moto's random source seeded per
write, so the rebuilt state is the saved one, ids included.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts import journal as journal_mod

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "resources.yaml"


def _client(service: str, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint_url)


def deploy_stack(stage: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Create (or find) the stage's stack; returns its outputs."""
    cfn = _client("cloudformation", endpoint_url)
    name = f"seacat-{stage}-resources"
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError:
        cfn.create_stack(
            StackName=name,
            TemplateBody=TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
        )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# --- the emulator server with a journal (make run) ------------------------------------------------

# Operations that never change an emulator's state: not journalled. Anything not listed here is
# journalled, so an operation this list does not know costs a line of the journal, never the state.
_READ_OPERATION = re.compile(
    r"(?!GetParametersForImport$)(Get|Describe|List|BatchGet|TransactGet)\w*"  # KMS's import parameters are kept
    r"|Query|Scan|Decrypt|Encrypt|GenerateDataKey\w*|GenerateRandom|Sign|Verify|GenerateMac|VerifyMac"
)
# moto's own control endpoints that do not change the emulated services.
_UNRECORDED_MOTO_API = ("/moto-api/seed", "/moto-api/recorder/")


def operation_of(environ: dict[str, Any], body: bytes) -> str:
    """The AWS operation a request calls: X-Amz-Target (JSON protocols) or Action (query protocol)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    from urllib.parse import parse_qs

    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if not action and "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return str(action[0])
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


def changes_state(environ: dict[str, Any], body: bytes) -> bool:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api/"):
        return method not in ("GET", "HEAD", "OPTIONS") and not path.startswith(_UNRECORDED_MOTO_API)
    operation = operation_of(environ, body)
    if operation.startswith(("GET ", "HEAD ", "OPTIONS ")):
        return False
    return _READ_OPERATION.fullmatch(operation) is None


def _seed(seq: int) -> None:
    """moto draws every id (KMS key ids, secret ARN suffixes, request ids) from one seedable Random.

    Seeding it per journalled write, by the write's position, makes a replayed write draw exactly the
    ids the original did, whatever reads ran in between (they draw request ids too).
    """
    from moto.moto_api._internal import mock_random

    mock_random.seed(f"seacat-journal-{seq}")


class JournalledApp:
    """moto's WSGI app, one request at a time; every state change is journalled before it is answered.

    One lock serialises all requests (moto's backends are not thread-safe, and the journal's order
    must be the order the writes took effect); for a write, the lock also covers the journal's
    append and fsync after moto applied it, and the answer is released only after them. So everything an emulator client
    saw succeed is on disk, and the journal's order is the order the emulator applied the writes.
    If the journal cannot be written the emulator stops answering (503) rather than run on with a
    state the directory does not have.
    """

    def __init__(self, app: Any, journal: journal_mod.Journal | None = None) -> None:
        self.app = app
        self.journal = journal
        self.failed: str | None = None
        self._lock = threading.Lock()

    def _call(self, environ: dict[str, Any], quiet: bool = False) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """Run moto on one request; a moto exception becomes a 500 here, so a write that fails that
        way is journalled (and replayed to the same 500) like any other."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        try:
            result = self.app(environ, start_response)
            try:
                chunks = [bytes(chunk) for chunk in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            if not quiet:
                traceback.print_exc()
            body = b"the AWS emulator failed on this request"
            return (
                "500 Internal Server Error",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                [body],
            )
        return started[0], started[1], chunks

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from werkzeug.datastructures import EnvironHeaders

        body = _read_body(environ)
        write = self.journal is not None and changes_state(environ, body)
        with self._lock:
            if self.failed is not None:
                return _unavailable(start_response, self.failed)
            if write:
                assert self.journal is not None
                _seed(self.journal.next_seq)
            status, headers, chunks = self._call(environ)
            if write:
                assert self.journal is not None
                try:
                    self.journal.append(
                        environ["REQUEST_METHOD"],
                        _raw_url(environ),
                        dict(EnvironHeaders(environ)),
                        body,
                        int(status.split()[0]),
                    )
                except OSError as exc:
                    self.failed = f"the data directory cannot be written ({exc}); restart make run"
                    print(f"seacat: EMULATOR STOPPED: {self.failed}", file=sys.stderr, flush=True)
                    return _unavailable(start_response, self.failed)
        start_response(status, headers)
        return chunks

    def replay(
        self,
        records: list[journal_mod.Record],
        progress: Callable[[int, int], None] | None = None,
        every: float = 5.0,
    ) -> None:
        """Apply journalled writes, in order, to this (fresh) emulator; StateError if one diverges.

        ``progress(done, total)`` is called every ``every`` seconds while it runs.
        """
        from urllib.parse import urlsplit

        from werkzeug.test import EnvironBuilder

        report_at = time.monotonic() + every
        for done, record in enumerate(records):
            if progress is not None and time.monotonic() >= report_at:
                progress(done, len(records))
                report_at = time.monotonic() + every
            url = urlsplit(record.url)
            headers = [
                (k, v) for k, v in record.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
            ]
            builder = EnvironBuilder(
                path=url.path,
                query_string=url.query,
                method=record.method,
                headers=headers,
                data=record.body,
                base_url=f"{url.scheme or 'http'}://{url.netloc or 'localhost'}",
            )
            try:
                environ = builder.get_environ()
            finally:
                builder.close()
            with self._lock:
                _seed(record.seq)
                status = int(self._call(environ, quiet=True)[0].split()[0])
            if status != record.status:
                raise journal_mod.StateError(
                    f"record {record.seq} ({operation_of(environ, record.body)}) answered {status} on replay "
                    f"but {record.status} when it was made: this moto cannot rebuild that state faithfully"
                )


def item_level_rollback() -> None:
    """Make moto's TransactWriteItems back up the items it writes, not the tables it touches.

    moto deep-copies every table a transaction names, to roll back if it is cancelled: each
    enrolment copied the whole certificates table, so the local stack slowed down as it grew (and a
    replay of n enrolments took O(n^2)). Here the transaction keeps moto's own logic, but the table
    copy returns the table itself, and a cancelled transaction is undone item by item from copies of
    the items it names, taken before it ran. Installed once per process; idempotent.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "item_level_rollback", False):
        return
    original = backend.transact_write_items
    inside = threading.local()

    class CopyWithoutTables:  # stands in for the ``copy`` module inside moto.dynamodb.models
        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table) and getattr(inside, "transaction", False):
                return value
            return copy.deepcopy(value, memo)

    def keys_of(table: Table, op: dict[str, Any]) -> tuple[Any, Any] | None:
        attrs = op.get("Item") if "Item" in op else op.get("Key")
        if not isinstance(attrs, dict):
            return None
        try:
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        except (KeyError, TypeError, ValueError):
            return None  # moto refuses the transaction itself; nothing of it is written
        return hash_value, range_value

    def restore(table: Table, hash_value: Any, range_value: Any, previous: Any) -> None:
        items: Any = table.items
        if range_value is not None:
            if previous is None:
                items[hash_value].pop(range_value, None)
            else:
                items[hash_value][range_value] = previous
        elif previous is None:
            items.pop(hash_value, None)
        else:
            items[hash_value] = previous

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo: list[tuple[Table, Any, Any, Any]] = []
        for entry in transact_items if isinstance(transact_items, list) else []:
            op = next(iter(entry.values()), None) if isinstance(entry, dict) else None
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            keys = keys_of(table, op) if table is not None and isinstance(op, dict) else None
            if table is None or keys is None:
                continue
            try:
                previous = table.get_item(*keys)
            except Exception:
                continue
            undo.append((table, keys[0], keys[1], copy.deepcopy(previous)))
        inside.transaction = True
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, previous in reversed(undo):
                restore(table, hash_value, range_value, previous)
            raise
        finally:
            inside.transaction = False

    transact_write_items.item_level_rollback = True  # type: ignore[attr-defined]
    models.copy = CopyWithoutTables()  # type: ignore[attr-defined,assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _raw_url(environ: dict[str, Any]) -> str:
    """The URL as the client sent it (percent-encoding intact, as moto's recorder keeps it)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        from werkzeug.wsgi import get_current_url

        return str(get_current_url(environ))
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{raw}"


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back, for the journal and the app."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):  # chunked: the server dechunks up to the end
        body = bytes(stream.read())
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = bytes(stream.read(length)) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _unavailable(start_response: Any, message: str) -> list[bytes]:
    body = json.dumps({"__type": "ServiceUnavailable", "message": message}).encode()
    start_response(
        "503 Service Unavailable", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def moto_app() -> Any:
    """A fresh moto WSGI app, as moto's server builds it (with item-level transaction rollback)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    item_level_rollback()
    return DomainDispatcherApplication(create_backend_app)


class EmulatorServer:
    """moto's ThreadedMotoServer, serving a given WSGI app (the journalled one) on 127.0.0.1."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
