"""Move tenants between deployments: export them to a file, import the file elsewhere.

    seacat-transfer export --all --include-keys --to acme.seacat        # from make run's data directory
    seacat-transfer import acme.seacat                                   # into the AWS stage SEACAT_STAGE names
    (python -m embedded.transfer ... the same)

``--from`` / ``--into`` choose the side: ``sqlite`` (the data directory: ``--data-dir``, else
SEACAT_DATA_DIR, else ``.seacat-local``; its KEK as the service finds it) or ``aws`` (the tables and
secrets of the stage SEACAT_STAGE names, as the service's own adapters reach them through
``chalicelib.context.aws_context()``: AWS credentials of your own, AWS_REGION, and AWS_ENDPOINT_URL
for an emulator). An export defaults to ``--from sqlite``, an import to ``--into aws``.

The file is JSON lines (``FORMAT``, version ``VERSION``; versions 1 and 2 are read too): a header,
then per tenant its tenant item (its CA entries with their key secrets and states), certificates
(CA certificates with their final CRLs), serial claims, identities, requests, (with ``--audit``)
audit events and (with ``--include-keys``) its keys, then an end line with the counts and a checksum
of every line before it. Tokens are not exported: a deployment's tokens are re-issued on the other
one. CA private keys and webhook secrets are written only with ``--include-keys``, each encrypted
with AES-256-GCM under a key derived from a passphrase (scrypt; SEACAT_TRANSFER_PASSPHRASE, or asked
on the terminal), bound to its tenant and kind; the checksum is then an HMAC under the passphrase
too. Every CA key the tenant's CA entries are over is written (the first key and each a rotation
made), except one the service no longer uses (its CA certificates revoked, or retired with their
final CRLs stored: its secret is scheduled for deletion or gone), which the file marks absent. The
file is written 0600, whole or not at all, and never over an existing file.

An import reads the whole file first (its checksum, every record, every key under the passphrase)
and writes nothing unless all of it holds. It refuses, before writing anything, a tenant that exists
on the target with another CA key. It then writes, per tenant, the keys (each CA key under the
target's name for it: the first key's, or the one a rotation gives the key; an absent one is not
written), the records, and the tenant item last, its key secrets named as the target names them
(until then the tenant does not exist there: an interrupted import is run again). Every
record is written only where its key is free; one already there is left as it is and counted as
the same or, if it differs (the target changed it since), as differing. A second run writes nothing
and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.domain import CertificateRecord, Tenant
from chalicelib.service.ports import KeyStore
from chalicelib.store.keys import iso
from chalicelib.store.transfer import Outcome, Record, TransferStore
from embedded.transfer_file import (
    ABSENT_CA_KEY,
    CA_KEY,
    FORMAT,
    NAMES,
    PASSPHRASE_ENV,
    SCRYPT_N,
    SECRET_KINDS,
    VERSION,
    CaKey,
    Checked,
    FileError,
    Sealing,
    TenantKeys,
    TransferError,
    Writer,
    ca_keys_of,
    check_file,
    encode,
    key_context,
    passphrase,
    records_of,
    tenant_of,
)

BATCH = 200  # records per write (a SQLite transaction; PutItems in flight on DynamoDB)
EXIT_REFUSED = 2


class Refused(TransferError):
    """The target holds something the import must not override (another CA key for a tenant)."""


# -- the two sides -----------------------------------------------------------------------------------


@dataclass
class Side:
    """Where tenants come from or go to: its records, its key store, what to call it."""

    name: str
    store: TransferStore
    keystore: KeyStore
    close: Callable[[], None] = lambda: None


class _NoKeys:
    """The key store of a side whose keys are not needed (an export without them) and not at hand."""

    def __init__(self, why: str) -> None:
        self.why = why

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise TransferError(self.why)

    secret_name = create = load = put_secret = load_secret = schedule_deletion = _refuse


def sqlite_side(data: Path, *, create: bool, keys: bool = True) -> Side:
    """The data directory of make run (its database and its KEK); ``create`` for an import: the
    directory, the database and the KEK are made as the service's first start makes them. Without
    ``keys`` (an export without them) a missing KEK is no error."""
    from chalicelib.cache import Cache
    from chalicelib.context import LOCAL_DATABASE
    from chalicelib.keystore.local import KeyEncryptionKeyError, LocalKeyStore, load_kek, sealed_count
    from chalicelib.settings import get_settings
    from chalicelib.store.sqlite.transfer import SqliteTransfer
    from scripts import datadir, journal

    database = data / LOCAL_DATABASE
    if (data / journal.JOURNAL).exists():
        raise TransferError(
            f"{datadir.shown(data)} holds the emulator run's state ({journal.JOURNAL}), which make run does not "
            "read: export it with --from aws while make run-emulator serves it, and import into another directory"
        )
    if create:
        os.umask(0o077)
        datadir.ensure_private(data)
    elif not database.is_file():
        raise TransferError(f"{datadir.shown(data)} holds no database ({LOCAL_DATABASE})")
    store = SqliteTransfer(database)
    if create:
        store.backend()  # the schema before the key store's table
    keystore: KeyStore
    try:
        kek = load_kek(get_settings().local_kek, data, create=create and sealed_count(database) == 0)
    except KeyEncryptionKeyError as exc:
        if keys:
            raise
        keystore = _NoKeys(str(exc))
    else:
        keystore = LocalKeyStore(database, kek.key, Cache("keys", 1024), Cache("secrets", 1024))
        try:
            keystore.check()  # never a secret sealed under another KEK than the stored ones'
        except BaseException:
            keystore.close()
            store.close()
            raise

    def close() -> None:
        if isinstance(keystore, LocalKeyStore):
            keystore.close()
        store.close()

    return Side(f"the data directory {datadir.shown(data)}", store, keystore, close)


def aws_side(workers: int) -> Side:
    """The stage's DynamoDB tables and Secrets Manager secrets, through the service's adapters."""
    from chalicelib.context import aws_context
    from chalicelib.settings import get_settings
    from chalicelib.store.dynamodb_transfer import DynamoDbTransfer

    settings = get_settings()
    where = f", endpoint {settings.aws_endpoint_url}" if settings.aws_endpoint_url else ""
    name = (
        f"the AWS stage {settings.stage} (tables {settings.table_prefix}-*, secrets {settings.secret_prefix}*, "
        f"region {settings.region}{where})"
    )
    return Side(name, DynamoDbTransfer(workers), aws_context().keystore)


# -- export ------------------------------------------------------------------------------------------


@dataclass
class Exported:
    path: Path
    counts: dict[str, Counter[str]]
    keys: bool

    def describe(self) -> str:
        parts = [f"{t} ({_counted(c)})" for t, c in self.counts.items()]
        return f"{_plural(len(self.counts), 'tenant')}: {'; '.join(parts)}"


def export(
    source: Side,
    path: Path,
    tenant_ids: list[str] | None,
    *,
    include_keys: bool,
    audit: bool,
    passphrase_text: str | None = None,
    scrypt_n: int | None = None,
) -> Exported:
    """Write the tenants (all when ``tenant_ids`` is None) of ``source`` to the new file ``path``."""
    ids = source.store.tenant_ids() if tenant_ids is None else list(dict.fromkeys(tenant_ids))
    unknown = [t for t in ids if source.store.tenant(t) is None]
    if unknown:
        raise TransferError(f"{source.name} has no tenant {', '.join(unknown)}")
    if not ids:
        raise TransferError(f"{source.name} holds no tenant")
    if path.exists():
        raise TransferError(f"{path} exists: export to a new file")
    keys_header: dict[str, Any] | None = None
    sealing: Sealing | None = None
    if include_keys:
        assert passphrase_text is not None
        sealing, keys_header = Sealing.new(passphrase_text, SCRYPT_N if scrypt_n is None else scrypt_n)
    writer = Writer(path, sealing.mac_key if sealing else None)
    counts: dict[str, Counter[str]] = {}
    try:
        writer.line(
            {
                "format": FORMAT,
                "version": VERSION,
                "created_at": iso(datetime.now(UTC)),
                "tenants": ids,
                "audit": audit,
                "keys": keys_header,
            }
        )
        for tenant_id in ids:
            counted = counts[tenant_id] = Counter()
            tenant: Tenant | None = None
            final_crls: set[str] = set()  # the CA certificates whose final CRL is stored (their key may be gone)
            for record in source.store.records(tenant_id, audit=audit):
                writer.line(encode(record))
                counted[NAMES[type(record)]] += 1
                if isinstance(record, Tenant):
                    tenant = record
                elif isinstance(record, CertificateRecord) and record.final_crl is not None:
                    final_crls.add(record.cert_id)
            if tenant is None:
                raise TransferError(f"tenant {tenant_id} disappeared from {source.name} during the export")
            if sealing is not None:
                for kind, line in _key_lines(source.keystore, tenant, final_crls, sealing):
                    writer.line(line)
                    counted[kind] += 1
        writer.finish({"type": "end", "counts": {t: dict(c) for t, c in counts.items()}})
    except BaseException:
        writer.abandon()
        raise
    return Exported(path, counts, include_keys)


def _key_lines(
    keystore: KeyStore, tenant: Tenant, final_crls: set[str], sealing: Sealing
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tenant's key lines, each with what it counts as: every CA key its CA entries are over (one
    the service no longer uses marked absent, never read: its secret is scheduled for deletion or
    gone), then its other secrets."""
    from chalicelib.ca import keys

    try:
        held = ca_keys_of(tenant, final_crls)
    except ValueError as exc:
        raise TransferError(f"tenant {tenant.tenant_id}: {exc}") from None
    for ca_key in held:
        line = {"type": "key", "tenant_id": tenant.tenant_id, "kind": CA_KEY, "fingerprint": ca_key.fingerprint}
        if not ca_key.needed:
            yield ABSENT_CA_KEY, {**line, "absent": True}
            continue
        key = keystore.load(ca_key.secret)
        if keys.public_key_fingerprint(key.public_key()) != ca_key.fingerprint:
            raise TransferError(
                f"the CA key in secret {ca_key.secret} of tenant {tenant.tenant_id} does not match its fingerprint"
            )
        context = key_context(tenant.tenant_id, CA_KEY, ca_key.fingerprint)
        yield CA_KEY, {**line, **sealing.seal(keys.private_key_to_pem(key), context)}
    for kind in SECRET_KINDS:
        value = keystore.load_secret(tenant.tenant_id, kind)
        if value is not None:
            context = key_context(tenant.tenant_id, kind, None)
            yield (
                kind,
                {
                    "type": "key",
                    "tenant_id": tenant.tenant_id,
                    "kind": kind,
                    "fingerprint": None,
                    **sealing.seal(value, context),
                },
            )


# -- import ------------------------------------------------------------------------------------------------


@dataclass
class TenantImport:
    tenant_id: str
    outcomes: Counter[str] = field(default_factory=Counter)  # "written"/"same"/"differs", all records
    differing: Counter[str] = field(default_factory=Counter)  # record types that differ
    absent_keys: int = 0  # CA keys the file marks absent (no longer used): none is written

    def describe(self) -> str:
        written, same, differs = (self.outcomes[o] for o in Outcome)
        if not written:
            text = f"{self.tenant_id}: nothing written, all {_plural(same + differs, 'item')} were there already"
        else:
            text = f"{self.tenant_id}: {_plural(written, 'item')} written, {same} there already"
        if differs:
            text += f"; {differs} differ and were left as the target has them ({_counted(self.differing)})"
        if self.absent_keys:
            text += (
                f"; {_plural(self.absent_keys, 'CA key')} no longer in use left out of the file "
                "(their CA certificates keep their state)"
            )
        return text


def import_file(path: Path, target: Side, passphrase_for: Callable[[], str]) -> list[TenantImport]:
    """Import every tenant of the file into ``target`` (see the module's docstring)."""
    checked = check_file(path, passphrase_for)
    preflight(checked, target)
    results = {t: TenantImport(t) for t in checked.tenants}
    records = records_of(path, checked)
    pending: list[Record] = []
    tenant: Tenant | None = None

    def flush() -> None:
        if pending:
            result = results[str(tenant_of(pending[0]))]
            for record, outcome in zip(pending, target.store.put(pending), strict=True):
                result.outcomes[outcome] += 1
                if outcome == Outcome.DIFFERS:
                    result.differing[NAMES[type(record)]] += 1
            pending.clear()

    def finish_tenant() -> None:
        flush()
        if tenant is not None:
            pending.append(on_target(target.keystore, tenant, checked.ca_keys[tenant.tenant_id]))
            flush()  # last: until now the tenant does not exist on the target

    for record in records:
        if isinstance(record, Tenant):
            finish_tenant()
            tenant = record
            held = checked.ca_keys[record.tenant_id]
            _import_keys(target, record, held, checked.keys.get(record.tenant_id), results[record.tenant_id])
            continue
        pending.append(record)
        if len(pending) >= BATCH:
            flush()
    finish_tenant()
    return list(results.values())


def target_name(keystore: KeyStore, tenant_id: str, ca_key: CaKey) -> str:
    """The name of ``ca_key``'s secret on the target: the first key's, or the one a rotation gives a key."""
    return keystore.secret_name(tenant_id) if ca_key.first else keystore.secret_name(tenant_id, ca_key.fingerprint)


def on_target(keystore: KeyStore, tenant: Tenant, held: list[CaKey]) -> Tenant:
    """The tenant item as the target stores it: its key secrets (the first key's, each CA entry's) named
    as the target names them; an entry over the first key keeps None."""
    names = {ca_key.secret: target_name(keystore, tenant.tenant_id, ca_key) for ca_key in held}
    cas = tuple(ca if ca.key_secret is None else replace(ca, key_secret=names[ca.key_secret]) for ca in tenant.cas)
    return replace(tenant, key_secret=names[tenant.key_secret], cas=cas)


def _stored(keystore: KeyStore, name: str) -> Any:
    """The CA key in secret ``name``, or None: none, or not readable (Secrets Manager tells no more than
    "not available" for a secret that is not there, scheduled for deletion or denied)."""
    try:
        return keystore.load(name)
    except Exception:
        return None


def _no_key(target: Side, tenant_id: str) -> str:
    return (
        f"the file holds no CA key for tenant {tenant_id} (exported without --include-keys) and "
        f"{target.name} has none: export it again with --include-keys"
    )


def preflight(checked: Checked, target: Side) -> None:
    """Refuse, before anything is written, a tenant the target holds another CA key for (its tenant item,
    or a secret of one of its keys under the target's name for it, as an interrupted import leaves it),
    or one of whose keys in use neither the file nor the target has."""
    from chalicelib.ca import keys as ca_keys

    refusals = []
    for tenant_id, exported in checked.tenants.items():
        there = target.store.tenant(tenant_id)
        if there is not None and there.key_fingerprint != exported.key_fingerprint:
            refusals.append(f"{target.name} has tenant {tenant_id} with another CA key than the file's")
            continue
        found = checked.keys.get(tenant_id)
        missing = False
        for ca_key in checked.ca_keys[tenant_id]:
            name = target_name(target.keystore, tenant_id, ca_key)
            stored = _stored(target.keystore, name)
            if stored is not None and ca_keys.public_key_fingerprint(stored.public_key()) != ca_key.fingerprint:
                without = "" if there is not None else " (a secret without its tenant)"
                refusals.append(f"{target.name} holds another CA key for tenant {tenant_id} in secret {name}{without}")
            elif stored is None and there is None and ca_key.needed:
                missing = missing or found is None or found.ca_keys.get(ca_key.fingerprint) is None
        if missing:
            refusals.append(_no_key(target, tenant_id))
    if refusals:
        raise Refused("; ".join(refusals) + ". Nothing was imported (CA keys are never replaced)")


def _import_keys(
    target: Side, tenant: Tenant, held: list[CaKey], found: TenantKeys | None, result: TenantImport
) -> None:
    """The CA keys (or the proof that the target has those in use already) and the other secrets,
    before any record. A CA key the file marks absent is not written: its CA entries keep their state,
    and the target's name for its secret stays free."""
    from chalicelib.ca import keys as ca_keys
    from chalicelib.errors import SecretAlreadyExists

    tenant_id = tenant.tenant_id
    keystore = target.keystore
    there = target.store.tenant(tenant_id)
    if found is None:  # a file without keys: the target must have those in use
        if there is not None and there.key_fingerprint == tenant.key_fingerprint:
            return
        for ca_key in held:
            if not ca_key.needed:
                continue
            stored = _stored(keystore, target_name(keystore, tenant_id, ca_key))
            if stored is None:
                raise Refused(_no_key(target, tenant_id))
            if ca_keys.public_key_fingerprint(stored.public_key()) != ca_key.fingerprint:
                raise Refused(f"{target.name} holds another CA key for tenant {tenant_id}: nothing of it was imported")
        return  # the target has the keys; the file has none to count
    for ca_key in held:
        key = found.ca_keys[ca_key.fingerprint]  # every key has its line (checked)
        if key is None:
            result.absent_keys += 1
            continue
        name = target_name(keystore, tenant_id, ca_key)
        try:
            keystore.create(tenant_id, key, name=name)
            result.outcomes[Outcome.WRITTEN] += 1
            continue
        except SecretAlreadyExists:
            stored = _stored(keystore, name)
        if stored is None:  # there, but not to be read: scheduled for deletion on the target
            if there is None and ca_key.needed:
                raise Refused(
                    f"{target.name} has the secret {name} for a CA key of tenant {tenant_id} in use, but it cannot "
                    "be read (scheduled for deletion?): restore it, then import again"
                )
            result.outcomes[Outcome.DIFFERS] += 1
            result.differing[CA_KEY] += 1
        elif ca_keys.public_key_fingerprint(stored.public_key()) != ca_key.fingerprint:
            raise Refused(
                f"{target.name} holds another CA key for tenant {tenant_id} in secret {name} (a secret without "
                "its tenant): nothing of it was imported"
            )
        else:
            result.outcomes[Outcome.SAME] += 1
    for kind, value in found.secrets.items():
        try:
            keystore.put_secret(tenant_id, kind, value, replace=False)
            result.outcomes[Outcome.WRITTEN] += 1
        except SecretAlreadyExists:
            if keystore.load_secret(tenant_id, kind) == value:
                result.outcomes[Outcome.SAME] += 1
            else:
                result.outcomes[Outcome.DIFFERS] += 1
                result.differing[kind] += 1


# -- the command ---------------------------------------------------------------------------------------


def _plural(n: int, noun: str) -> str:
    from scripts.datadir import plural

    return plural(n, noun)


_NOUNS = {
    "tenant": "tenant item",
    "certificate": "certificate",
    "serial": "serial claim",
    "identity": "identity",
    "request": "request",
    "audit": "audit event",
    CA_KEY: "CA key",
    ABSENT_CA_KEY: "absent CA key",
    "webhook-secret": "webhook secret",
}


def _counted(counts: Counter[str]) -> str:
    return ", ".join(_plural(n, _NOUNS.get(k, k)) for k, n in counts.items() if n)


def _local_environment() -> None:
    """The sqlite side's settings as make run has them: the local stage's, where the environment sets none."""
    from scripts import datadir

    try:
        stage = datadir.stage_environment("local")
    except OSError:  # installed without the project's .chalice/config.json: the defaults are the local stage's
        return
    for name, value in stage.items():
        os.environ.setdefault(name, value)


def _side(kind: str, args: argparse.Namespace, *, create: bool, keys: bool = True) -> Side:
    if kind == "aws":
        if not os.environ.get("SEACAT_STAGE"):
            raise TransferError("set SEACAT_STAGE to the AWS stage (e.g. prod), and AWS_REGION and credentials")
        return aws_side(args.workers)
    from embedded.run import DEFAULT_DATA_DIR
    from scripts import datadir

    _local_environment()
    try:
        data = datadir.chosen(args.data_dir, DEFAULT_DATA_DIR)
    except datadir.StateError as exc:
        raise TransferError(str(exc)) from None
    return sqlite_side(data, create=create, keys=keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seacat-transfer", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("export", help="write tenants to a new file")
    which = out.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", action="append", help="a tenant to export (again for more)")
    which.add_argument("--all", action="store_true", help="every tenant")
    out.add_argument("--to", type=Path, required=True, metavar="FILE", help="the new file (0600)")
    out.add_argument("--from", dest="side", choices=("sqlite", "aws"), default="sqlite")
    out.add_argument(
        "--include-keys",
        action="store_true",
        help=f"write the CA keys and webhook secrets, encrypted under a passphrase ({PASSPHRASE_ENV}, or asked)",
    )
    out.add_argument("--audit", action="store_true", help="write the tenants' audit events too")
    into = sub.add_parser("import", help="write a file's tenants into a deployment")
    into.add_argument("file", type=Path)
    into.add_argument("--into", dest="side", choices=("aws", "sqlite"), default="aws")
    for p in (out, into):
        p.add_argument("--data-dir", type=Path, help="the sqlite side's data directory (default: SEACAT_DATA_DIR)")
        p.add_argument("--workers", type=int, default=8, help="the aws side's requests in flight (default 8)")
    args = parser.parse_args(argv)
    side: Side | None = None
    try:
        if args.command == "export":
            text = passphrase(confirm=True) if args.include_keys else None
            side = _side(args.side, args, create=False, keys=args.include_keys)
            done = export(
                side,
                args.to.expanduser().absolute(),
                None if args.all else args.tenant,
                include_keys=args.include_keys,
                audit=args.audit,
                passphrase_text=text,
            )
            keys = (
                "CA keys and secrets encrypted under the passphrase (scrypt, AES-256-GCM)"
                if done.keys
                else "no key (without --include-keys: the target must hold the CA keys already)"
            )
            print(f"seacat: exported from {side.name} to {done.path} (0600; {keys}): {done.describe()}", flush=True)
            return 0
        side = _side(args.side, args, create=True)
        print(f"seacat: importing {args.file} into {side.name}", flush=True)
        results = import_file(args.file.expanduser().absolute(), side, lambda: passphrase(confirm=False))
        for result in results:
            print(f"seacat: {result.describe()}", flush=True)
        written = sum(r.outcomes[Outcome.WRITTEN] for r in results)
        differs = sum(r.outcomes[Outcome.DIFFERS] for r in results)
        if not written:
            print("seacat: nothing changed: everything in the file was there already", flush=True)
        else:
            print(f"seacat: imported {_plural(len(results), 'tenant')}: {_plural(written, 'item')} written", flush=True)
        if differs:
            print(f"seacat: {_plural(differs, 'item')} differ on the target and were left as they are", flush=True)
        return 0
    except (Refused, FileError) as exc:
        print(f"seacat: {args.command} refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (TransferError, OSError) as exc:
        print(f"seacat: {args.command} failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the stores' refusals (Unavailable, SchemaMismatch, a KEK that does not open)
        from chalicelib.errors import PkiError, Unavailable
        from chalicelib.keystore.local import LocalKeyStoreError
        from chalicelib.store.sqlite.transfer import SchemaMismatch

        if isinstance(exc, PkiError | LocalKeyStoreError | SchemaMismatch):
            hint = ""
            if isinstance(exc, Unavailable) and args.side == "aws":
                hint = (
                    " (the stage's tables and secrets reached with your credentials: a CA key's secret needs "
                    "kms:GenerateDataKey and kms:Decrypt on the stage's key, which its key policy gives the "
                    "service role alone; docs/self-hosting.md says how to allow an import)"
                )
            print(f"seacat: {args.command} failed: {exc}{hint}", file=sys.stderr)
            return 1
        raise
    finally:
        if side is not None:
            side.close()


if __name__ == "__main__":
    sys.exit(main())
