"""The transfer file (embedded/transfer_file.py) and the SQLite side of the transfer tool, without AWS:
records through JSON and back, what a check refuses, and a tenant moved between two data directories
(tests/integration/test_transfer.py moves one to AWS on moto and back, through the API)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import AuditEvent, CaCert, CertificateKind, RequestRecord, Tenant, TenantConfig
from chalicelib.store.sqlite import SqliteBackend
from chalicelib.store.sqlite.transfer import SchemaMismatch, SqliteTransfer
from chalicelib.store.transfer import Outcome, SerialClaim
from embedded import transfer
from embedded.transfer_file import FileError, decode, encode
from tests.conftest import ROOT
from tests.contract.conftest import cert_record, issue, request_record

PASSPHRASE = "a passphrase of the tests"
FAST = 2**14
T = "tf-tenant"


def test_every_record_type_survives_a_line() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    ca = cert_record(T, kind="ca", at=at)
    client = replace(cert_record(T, identity="ABCDEFGHIJKLMNOP", serial=2**158 + 5, at=at), revoked_at=at)
    records: list[Any] = [
        Tenant(
            T,
            TenantConfig(manual_approval=True, gateway_credentials=("ab",)),
            "s",
            "f",
            True,
            (CaCert(ca.cert_id, ca.der, at),),
            ca.cert_id,
            at,
            at,
            3,
        ),
        replace(ca, kind=CertificateKind.CA),
        client,
        SerialClaim(T, client.serial, client.cert_id),
        request_record(T, "ABCDEFGHIJKLMNOP", at=at),
        AuditEvent(T, at, "certificate.issued", "client", "x", "issued", {"n": 1, "l": [1, "a"]}, "0123456789abcdef"),
    ]
    for record in records:
        line = json.loads(json.dumps(encode(record)))
        assert decode(line) == record, type(record).__name__
    assert encode(client)["serial"] == f"{2**158 + 5:x}"  # no precision lost to a JSON number


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"surprise": 1}, "no field 'surprise'"),
        ({"version": "1"}, "version: expected int"),
        ({"der": "not base64!"}, "der: not base64"),
        ({"created_at": "2024-05-01T12:00:00"}, "created_at: a time without its offset"),
        ({"serial": "0x10"}, "serial: not lowercase hex"),
        ({"kind": "root"}, "'root' is not a valid CertificateKind"),
    ],
)
def test_a_record_line_is_read_strictly(change: dict[str, Any], message: str) -> None:
    line = {**encode(cert_record(T)), **change}
    with pytest.raises((ValueError, TypeError), match=message):
        decode(line)
    missing = encode(cert_record(T))
    del missing["der"]
    with pytest.raises(ValueError, match="without its field 'der'"):
        decode(missing)


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with a tenant, its sealed CA key, a few certificates, a revocation, a pending request."""
    from chalicelib.ca import keys
    from chalicelib.cache import Cache
    from chalicelib.keystore.local import LocalKeyStore, load_kek
    from chalicelib.settings import get_settings
    from scripts import datadir

    monkeypatch.delenv("SEACAT_LOCAL_KEK", raising=False)
    monkeypatch.setenv("SEACAT_SECRET_PREFIX", "seacat/local/")
    get_settings.cache_clear()
    data = tmp_path / "source"
    datadir.ensure_private(data)
    key = keys.generate_ca_key()
    store = LocalKeyStore(data / "seacat.db", load_kek(None, data, create=True).key, Cache("k", 1), Cache("s", 1))
    secret = store.create(T, key)
    store.put_secret(T, "webhook-secret", b"w" * 32, replace=False)
    store.close()
    with SqliteBackend(data / "seacat.db") as b:
        ca = cert_record(T, kind="ca")
        tenant = b.tenants.create(T, TenantConfig(), secret, keys.public_key_fingerprint(key.public_key()), False)
        b.tenants.add_ca(tenant, ca, [b.audit.item(T, "ca.created", "op")])
        issued = [issue(b.certificates, T, f"ID{n}") for n in range(3)]
        b.certificates.revoke(
            issued[0].cert, "keyCompromise", issued[0].identity, [b.audit.item(T, "certificate.revoked", "op")]
        )
        b.certificates.save_request(request_record(T, "PENDING"))
    return data


def test_a_tenant_moves_between_data_directories_once(source: Path, tmp_path: Path) -> None:
    side = transfer.sqlite_side(source, create=False)
    path = tmp_path / "t.seacat"
    try:
        done = transfer.export(
            side, path, None, include_keys=True, audit=True, passphrase_text=PASSPHRASE, scrypt_n=FAST
        )
    finally:
        side.close()
    assert dict(done.counts[T]) == {
        "tenant": 1,
        "ca-key": 1,
        "webhook-secret": 1,
        "certificate": 4,
        "serial": 3,
        "identity": 3,
        "request": 4,
        "audit": 2,
    }
    target = transfer.sqlite_side(tmp_path / "target", create=True)
    try:
        first = transfer.import_file(path, target, lambda: PASSPHRASE)[0]
        assert first.outcomes == {Outcome.WRITTEN: sum(done.counts[T].values())}
        again = transfer.import_file(path, target, lambda: PASSPHRASE)[0]
        assert again.outcomes == {Outcome.SAME: sum(done.counts[T].values())}
        moved = list(SqliteTransfer(tmp_path / "target" / "seacat.db").records(T, audit=True))
        assert moved == list(SqliteTransfer(source / "seacat.db").records(T, audit=True))
        assert target.keystore.load_secret(T, "webhook-secret") == b"w" * 32
        name = target.keystore.secret_name(T)
        assert isinstance(moved[0], Tenant) and moved[0].key_secret == name
        before = transfer.sqlite_side(source, create=False)
        try:
            assert target.keystore.load(name).private_numbers() == before.keystore.load(name).private_numbers()
        finally:
            before.close()
    finally:
        target.close()


def test_a_check_refuses_a_changed_moved_or_extended_file(source: Path, tmp_path: Path) -> None:
    side = transfer.sqlite_side(source, create=False)
    path = tmp_path / "t.seacat"
    try:
        transfer.export(side, path, [T], include_keys=True, audit=False, passphrase_text=PASSPHRASE, scrypt_n=FAST)
        with pytest.raises(transfer.TransferError, match="exists"):
            transfer.export(side, path, [T], include_keys=False, audit=False)
        with pytest.raises(transfer.TransferError, match="has no tenant nobody"):
            transfer.export(side, tmp_path / "n.seacat", ["nobody"], include_keys=False, audit=False)
    finally:
        side.close()
    lines = path.read_bytes().splitlines(keepends=True)
    key_line = next(i for i, line in enumerate(lines) if b'"kind":"ca-key"' in line)

    def variant(name: str, new_lines: list[bytes]) -> Path:
        out = tmp_path / name
        out.write_bytes(b"".join(new_lines))
        return out

    def check(p: Path) -> Any:
        return transfer.check_file(p, lambda: PASSPHRASE)

    moved = json.loads(lines[key_line])
    moved["tenant_id"] = "another"  # a key put under another tenant does not open there
    with pytest.raises(FileError, match="away from its tenant"):
        check(variant("moved", [*lines[:key_line], json.dumps(moved).encode() + b"\n", *lines[key_line + 1 :]]))
    flipped = json.loads(lines[key_line])
    flipped["kind"] = "webhook-secret"
    with pytest.raises(FileError, match="a key that does not open"):
        check(variant("kind", [*lines[:key_line], json.dumps(flipped).encode() + b"\n", *lines[key_line + 1 :]]))
    with pytest.raises(FileError, match="follows the end line"):
        check(variant("extended", [*lines, lines[-2]]))
    with pytest.raises(FileError, match="no end line"):
        check(variant("cut", lines[:-1]))
    header = json.loads(lines[0])
    header["version"] = 4
    with pytest.raises(FileError, match="version 4; this release reads versions 1, 2, 3"):
        check(variant("newer", [json.dumps(header).encode() + b"\n", *lines[1:]]))
    with pytest.raises(transfer.TransferError, match="passphrase does not open"):
        transfer.check_file(path, lambda: "another passphrase")
    # a line changed between the check and the import is noticed before it is written
    checked = check(path)
    swapped = variant("swapped", [*lines[:-2], lines[-2][:-1] + b" \n", lines[-1]])
    with pytest.raises(FileError, match="changed since the file was checked"):
        list(transfer.records_of(swapped, checked))
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_sqlite_side_puts_each_ca_entry_with_its_key_secret_and_state(tmp_path: Path) -> None:
    from chalicelib.domain import CaState

    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    first, rotated = cert_record(T, kind="ca", at=at), cert_record(T, kind="ca", at=at)
    rotated = replace(rotated, kind=CertificateKind.CA, final_crl=b"final crl")
    tenant = Tenant(
        T,
        TenantConfig(),
        "seacat/local/tf-tenant/ca-key",
        "f",
        False,
        (
            CaCert(first.cert_id, first.der, at, None, CaState.RETIRED, at),
            CaCert(rotated.cert_id, rotated.der, at, "seacat/local/tf-tenant/ca-key-0123456789abcdef"),
        ),
        rotated.cert_id,
        at,
        at,
        4,
    )
    store = SqliteTransfer(tmp_path / "seacat.db")
    try:
        records = [replace(first, kind=CertificateKind.CA), rotated, tenant]
        assert store.put(records) == [Outcome.WRITTEN] * 3
        assert store.put(records) == [Outcome.SAME] * 3
        assert store.tenant(T) == tenant
        read = list(store.records(T, audit=False))
        assert read[0] == tenant and sorted(read[1:], key=str) == sorted(records[:2], key=str)
    finally:
        store.close()


def resealed(path: Path, out: Path, change: Any, *, version: int | None = None) -> Path:
    """``path`` with each line between the header and the end changed by ``change`` (None drops it), its keys
    sealed again for ``version``, its counts and MAC made anew: a file only the passphrase's holder can make."""
    import base64
    import hashlib
    import hmac
    from collections import Counter

    from embedded.transfer_file import ABSENT_CA_KEY, Sealing, key_context

    header, *body, end = (json.loads(line) for line in path.read_text().splitlines())
    spec = header["keys"]
    sealing = Sealing.derive(PASSPHRASE, base64.b64decode(spec["salt"]), spec["n"], spec["r"], spec["p"])
    before, header["version"] = header["version"], version or header["version"]
    lines: list[dict[str, Any]] = []
    counts: dict[str, Counter[str]] = {}
    for line in body:
        if line["type"] == "key" and "nonce" in line:
            context = (line["tenant_id"], line["kind"], line["fingerprint"])
            line = {
                **line,
                **sealing.seal(
                    sealing.open(line, key_context(*context, before)), key_context(*context, header["version"])
                ),
            }
        changed = change(line)
        if changed is None:
            continue
        lines.append(changed)
        kind = (
            changed["type"] if changed["type"] != "key" else ABSENT_CA_KEY if changed.get("absent") else changed["kind"]
        )
        counts.setdefault(changed.get("tenant_id") or changed.get("tenant"), Counter())[kind] += 1
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in [header, *lines])
    end = {"type": "end", "counts": {t: dict(c) for t, c in counts.items()}}
    end["mac"] = hmac.new(sealing.mac_key, data, hashlib.sha256).hexdigest()
    out.write_bytes(data + json.dumps(end, separators=(",", ":")).encode() + b"\n")
    return out


def test_a_version_1_file_is_read_and_imported_as_before(source: Path, tmp_path: Path) -> None:
    side = transfer.sqlite_side(source, create=False)
    path = tmp_path / "t.seacat"
    try:
        transfer.export(side, path, [T], include_keys=True, audit=True, passphrase_text=PASSPHRASE, scrypt_n=FAST)
    finally:
        side.close()

    def as_version_1(line: dict[str, Any]) -> dict[str, Any]:
        if line["type"] == "tenant":
            line["cas"] = [{k: ca[k] for k in ("cert_id", "der", "created_at")} for ca in line["cas"]]
        if line["type"] == "certificate":
            del line["final_crl"]
        if line["type"] == "request":
            del line["kind"], line["profile"]
        return line

    old = resealed(path, tmp_path / "v1.seacat", as_version_1, version=1)
    assert json.loads(old.read_text().splitlines()[0])["version"] == 1
    target = transfer.sqlite_side(tmp_path / "target", create=True)
    try:
        result = transfer.import_file(old, target, lambda: PASSPHRASE)[0]
        assert result.outcomes[Outcome.DIFFERS] == 0 and result.outcomes[Outcome.WRITTEN] > 10
        moved = list(SqliteTransfer(tmp_path / "target" / "seacat.db").records(T, audit=True))
        assert moved == list(SqliteTransfer(source / "seacat.db").records(T, audit=True))
    finally:
        target.close()
    # a version 1 line in a version 3 file is not: the CA entries' fields are that version's
    with pytest.raises(FileError, match="not a CA certificate entry"):
        transfer.check_file(resealed(path, tmp_path / "mixed.seacat", as_version_1), lambda: PASSPHRASE)


def test_a_check_refuses_a_ca_key_in_use_marked_absent(source: Path, tmp_path: Path) -> None:
    side = transfer.sqlite_side(source, create=False)
    path = tmp_path / "t.seacat"
    try:
        transfer.export(side, path, [T], include_keys=True, audit=False, passphrase_text=PASSPHRASE, scrypt_n=FAST)
    finally:
        side.close()

    def absent(line: dict[str, Any]) -> dict[str, Any]:
        if line.get("kind") == "ca-key":
            return {k: line[k] for k in ("type", "tenant_id", "kind", "fingerprint")} | {"absent": True}
        return line

    with pytest.raises(FileError, match="its CA key [0-9a-f]{64} is in use, but the file marks it absent"):
        transfer.check_file(resealed(path, tmp_path / "absent.seacat", absent), lambda: PASSPHRASE)
    dropped = resealed(path, tmp_path / "dropped.seacat", lambda line: None if line.get("kind") == "ca-key" else line)
    with pytest.raises(FileError, match="has no line for its CA key"):
        transfer.check_file(dropped, lambda: PASSPHRASE)

    def foreign(line: dict[str, Any]) -> dict[str, Any]:
        return line | {"fingerprint": "0" * 64} if line.get("kind") == "ca-key" else line

    with pytest.raises(FileError, match="a CA key that is not one of the tenant's"):
        transfer.check_file(resealed(path, tmp_path / "foreign.seacat", foreign), lambda: PASSPHRASE)


def test_which_ca_keys_a_tenant_has_and_which_the_service_still_uses() -> None:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from chalicelib.ca import keys
    from chalicelib.domain import CaState
    from embedded.transfer_file import ca_keys_of

    at = datetime(2024, 5, 1, tzinfo=UTC)

    def ca_over(key: Any, n: int) -> CaCert:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"CA {n}")])
        cert = (
            x509.CertificateBuilder(name, name, key.public_key(), n, at, at + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return CaCert(f"ca{n}", cert.public_bytes(serialization.Encoding.DER), at)

    first, revoked, kept, released, active = (keys.generate_ca_key() for _ in range(5))
    fingerprint = {id(k): keys.public_key_fingerprint(k.public_key()) for k in (first, revoked, kept, released, active)}
    cas = (
        replace(ca_over(first, 1), state=CaState.RETIRED),  # its final CRL is stored: released
        replace(ca_over(revoked, 2), key_secret="s/revoked", state=CaState.REVOKED),
        replace(ca_over(kept, 3), key_secret="s/kept", state=CaState.RETIRED),  # no final CRL: kept to sign one
        replace(ca_over(released, 4), key_secret="s/released", state=CaState.RETIRED),
        replace(ca_over(released, 5), key_secret="s/released", state=CaState.RETIRED),
        replace(ca_over(active, 6), key_secret="s/active"),
    )
    tenant = Tenant(T, TenantConfig(), "s/first", fingerprint[id(first)], False, cas, "ca6", at, at, 9)
    found = ca_keys_of(tenant, {"ca1", "ca4", "ca5"})
    assert [(k.secret, k.first, k.needed, len(k.cas)) for k in found] == [
        ("s/first", True, False, 1),
        ("s/revoked", False, False, 1),
        ("s/kept", False, True, 1),
        ("s/released", False, False, 2),
        ("s/active", False, True, 1),
    ]
    assert [k.fingerprint for k in found] == [fingerprint[id(k)] for k in (first, revoked, kept, released, active)]
    assert [k.needed for k in ca_keys_of(tenant, {"ca1", "ca4"})][3] is True  # one retired CA without its CRL
    # a tenant without a CA certificate yet needs its first key
    assert [(k.first, k.needed) for k in ca_keys_of(replace(tenant, cas=(), active_ca=None), ())] == [(True, True)]
    with pytest.raises(ValueError, match="not over one key"):
        ca_keys_of(replace(tenant, cas=(*cas, replace(ca_over(kept, 7), key_secret="s/active"))), ())
    with pytest.raises(ValueError, match="another secret of the tenant holds too"):
        ca_keys_of(replace(tenant, cas=(*cas, replace(ca_over(kept, 7), key_secret="s/kept-again"))), ())


def test_a_database_of_another_schema_is_not_read(source: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(source / "seacat.db")
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    with pytest.raises(SchemaMismatch, match="start this release's service on it once"):
        SqliteTransfer(source / "seacat.db").tenant_ids()


def test_the_file_and_the_sqlite_side_import_no_aws_library() -> None:
    code = (
        "import sys\n"
        "import embedded.transfer, embedded.transfer_file, chalicelib.store.sqlite.transfer\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'pynamodb'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr


def test_an_import_refuses_an_emulator_directory_and_another_kek(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.keystore.local import KeyEncryptionKeyError
    from chalicelib.settings import get_settings

    old = tmp_path / "old"
    old.mkdir()
    (old / "journal.jsonl").write_text("")
    with pytest.raises(transfer.TransferError, match="emulator run's state"):
        transfer.sqlite_side(old, create=True)
    assert sorted(p.name for p in old.iterdir()) == ["journal.jsonl"]
    monkeypatch.setenv("SEACAT_LOCAL_KEK", "A" * 43 + "=")
    get_settings.cache_clear()
    with pytest.raises(KeyEncryptionKeyError, match="does not open"):
        transfer.sqlite_side(source, create=True)  # nothing sealed under a second KEK beside the first


def test_an_installed_command_asks_for_its_data_directory(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from scripts import datadir

    monkeypatch.delenv("SEACAT_DATA_DIR", raising=False)
    monkeypatch.setattr(datadir, "ROOT", Path("/nonexistent"))
    assert transfer.main(["export", "--all", "--to", "/nonexistent/x"]) == 1
    assert "Give --data-dir, or set SEACAT_DATA_DIR" in capsys.readouterr().err


def test_profiles_and_csrs_move_and_a_version_2_file_is_read(source: Path, tmp_path: Path) -> None:
    from chalicelib.ca.profiles import parse_profile
    from chalicelib.domain import RequestKind

    with SqliteBackend(source / "seacat.db") as b:
        tenant = b.tenants.get(T)
        assert tenant is not None
        routers = parse_profile("routers", {"sans": {"dns": ["*.example.com"]}, "approval": "manual"})
        b.tenants.update_config(tenant, replace(tenant.config, profiles=(routers,), est_profile="routers"))
        csr = replace(request_record(T, "CSRID"), kind=RequestKind.CSR, profile="routers", attributes=())
        b.certificates.save_request(csr)
    side = transfer.sqlite_side(source, create=False)
    path = tmp_path / "t.seacat"
    try:
        transfer.export(side, path, [T], include_keys=True, audit=False, passphrase_text=PASSPHRASE, scrypt_n=FAST)
    finally:
        side.close()
    assert json.loads(path.read_text().splitlines()[0])["version"] == 3
    target = transfer.sqlite_side(tmp_path / "target", create=True)
    try:
        transfer.import_file(path, target, lambda: PASSPHRASE)
        moved = list(SqliteTransfer(tmp_path / "target" / "seacat.db").records(T, audit=False))
        assert moved == list(SqliteTransfer(source / "seacat.db").records(T, audit=False))
        assert isinstance(moved[0], Tenant) and moved[0].config.profile("routers") == routers
        assert moved[0].config.est_profile == "routers"
        assert any(isinstance(r, RequestRecord) and r.kind == RequestKind.CSR and r.profile == "routers" for r in moved)
    finally:
        target.close()

    # version 2: requests without kind and profile read as SeaCat CRs
    def as_version_2(line: dict[str, Any]) -> dict[str, Any] | None:
        if line["type"] == "request":
            if line["kind"] == "csr":
                return None
            del line["kind"], line["profile"]
        if line["type"] == "tenant":
            del line["config"]["profiles"], line["config"]["estProfile"]
        return line

    old = resealed(path, tmp_path / "v2.seacat", as_version_2, version=2)
    from embedded.transfer_file import check_file, records_of

    records = [r for r in records_of(old, check_file(old, lambda: PASSPHRASE)) if isinstance(r, RequestRecord)]
    assert records and all(r.kind == RequestKind.CR and r.profile is None for r in records)

    # a profile changed in the file (resealed: only the passphrase's holder could) is refused by name
    def tampered(line: dict[str, Any]) -> dict[str, Any]:
        if line["type"] == "tenant":
            line["config"]["profiles"][0]["keyTypes"] = ["DSA"]
        return line

    with pytest.raises(FileError, match="keyTypes"):
        transfer.check_file(resealed(path, tmp_path / "bad.seacat", tampered), lambda: PASSPHRASE)
