"""The storage ports on an embedded SQLite database (standard library ``sqlite3``): what ``make run``
serves from on one machine without AWS. Same contract as the DynamoDB and in-memory stores (the
contract tests run on all three): the same conditions raise the same Conflict, versions move the
same way, pages come with opaque tokens, and audit entries are written in the transaction of the
change they record.

    backend = SqliteBackend(Path(".seacat-local/seacat.db"))   # creates or migrates the file
    ...  backend.tenants, backend.tokens, backend.certificates, backend.audit
    backend.close()

One backend per process, opened in that process (never carried across a fork); any number of
threads share it, each with a connection of its own. Several processes may open the same file:
their writes serialize on SQLite's write lock. Importing this package imports no AWS library.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from chalicelib.store.sqlite.audit import SqliteAudit
from chalicelib.store.sqlite.certificates import SqliteCertificates
from chalicelib.store.sqlite.credentials import SqliteCredentials
from chalicelib.store.sqlite.db import BUSY_TIMEOUT, Database, StoreClosed
from chalicelib.store.sqlite.schema import VERSION, SchemaError
from chalicelib.store.sqlite.tenants import SqliteTenants
from chalicelib.store.sqlite.tokens import SqliteTokens

__all__ = ["SCHEMA_VERSION", "SchemaError", "SqliteBackend", "StoreClosed"]

SCHEMA_VERSION = VERSION


class SqliteBackend:
    """Every storage port (not the key store) on one SQLite database file.

    Opening creates the file (owner-only) if it is missing, sets WAL mode and applies the schema
    migrations it lacks; a file of a newer schema raises ``SchemaError``. ``busy_timeout``: how long
    a write waits for another's transaction before the call raises ``Unavailable`` (503).
    """

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.db = Database(path, busy_timeout=busy_timeout)
        self.tenants = SqliteTenants(self.db)
        self.tokens = SqliteTokens(self.db)
        self.credentials = SqliteCredentials(self.db)
        self.certificates = SqliteCertificates(self.db)
        self.audit = SqliteAudit(self.db)

    @property
    def path(self) -> Path:
        return self.db.path

    def close(self, *, every_thread: bool = False) -> None:
        """Close this thread's connection now, the other threads' on their next call or their end
        (``every_thread``: now, when the process is leaving); every call after this raises
        ``StoreClosed``."""
        self.db.close(every_thread=every_thread)

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
