"""`make run-emulator`: the service on 127.0.0.1 with its embedded AWS emulator, no AWS account needed.

(`make run` serves the same app on SQLite and a local key store instead: embedded/run.py.)

Starts moto in server mode on 127.0.0.1, restores its saved state from the data directory
(``.seacat-emulator/``, or ``SEACAT_DATA_DIR``) by replaying its journal, deploys infra/resources.yaml
into it (tables and KMS key, exactly as on AWS; nothing to do when the state has them), installs
the operator token, then serves the app with `chalice local`. Ctrl-C stops everything it started;
every change is on disk the moment the emulator acknowledged it, so a kill loses nothing that was
answered. If the saved state cannot be restored it says why and exits (status 2) without touching
it. ``python -m scripts.local_run --reset`` (``make reset-emulator``) deletes the data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts import datadir
from scripts.datadir import HOST, ROOT, plural, shown, stage_environment, wait_healthy

if TYPE_CHECKING:
    from scripts.emulator import EmulatorServer
    from scripts.journal import Journal

DEFAULT_DATA_DIR = ROOT / ".seacat-emulator"
EXIT_NOT_RESTORED = datadir.EXIT_NOT_STARTED


@dataclass
class Emulator:
    server: EmulatorServer
    journal: Journal
    lock_fd: int
    restored: int  # journalled writes replayed
    replay_seconds: float
    notes: list[str]

    @property
    def endpoint(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.journal.close()
        os.close(self.lock_fd)


def start_emulator(port: int, data: Path) -> Emulator:
    """Restore the saved state into a fresh moto and serve it on 127.0.0.1; StateError if it cannot."""
    import logging

    from moto import __version__ as moto_version

    from scripts import journal
    from scripts.emulator import EmulatorServer, JournalledApp, moto_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator call is noise
    datadir.ensure_private(data)
    lock_fd = datadir.lock(data)
    try:
        notes: list[str] = []
        meta = journal.read_meta(data)
        path = data / journal.JOURNAL
        loaded = journal.read_journal(path)
        if meta is not None and meta.get("moto") != moto_version:
            notes.append(f"saved by moto {meta.get('moto')}, replayed by moto {moto_version}")
        app = JournalledApp(moto_app())
        started = time.monotonic()
        if loaded.records:
            print(
                f"seacat: restoring {shown(data)}: replaying {plural(len(loaded.records), 'saved write')}", flush=True
            )
        try:
            app.replay(
                loaded.records,
                progress=lambda done, total: print(
                    f"seacat: restoring {shown(data)}: {done} of {total} saved writes", flush=True
                ),
            )
        except journal.StateError:
            raise
        except Exception as exc:  # a moto that cannot take its own requests back: say so, change nothing
            raise journal.StateError(f"the replay failed: {type(exc).__name__}: {exc}") from exc
        replay_seconds = time.monotonic() - started
        # Restored: from here on the directory may change.
        if loaded.torn_bytes:
            journal.drop_torn_tail(path, loaded.valid_bytes)
            notes.append(
                f"dropped an incomplete last record ({loaded.torn_bytes} bytes): the previous run was stopped "
                "in the middle of a write that was never acknowledged"
            )
        if meta is None:
            journal.write_meta(data, {"format": journal.FORMAT, "moto": moto_version})
        app.journal = appended = journal.Journal(path, next_seq=len(loaded.records) + 1)
        server = EmulatorServer(app, HOST, port)
        server.start()
    except BaseException:
        os.close(lock_fd)
        raise
    return Emulator(server, appended, lock_fd, len(loaded.records), replay_seconds, notes)


def state_summary(endpoint: str) -> str:
    """What the emulator holds for this stage, counted through its API (the settings' names)."""
    import boto3

    from chalicelib.settings import load_settings

    settings = load_settings(os.environ)
    session = boto3.session.Session()
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)

    def count(table: str, **scan: Any) -> int:
        total, start = 0, None
        for _ in range(10_000):  # pages; bounded
            page = dynamodb.scan(
                TableName=settings.table(table),
                Select="COUNT",
                **scan,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            total += int(page["Count"])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return total

    tenants, cas, start = 0, 0, None
    for _ in range(10_000):
        page = dynamodb.scan(
            TableName=settings.table("tenants"),
            ProjectionExpression="cas",
            **({"ExclusiveStartKey": start} if start else {}),
        )
        tenants += len(page["Items"])
        cas += sum(len(item.get("cas", {}).get("L", [])) for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    secrets_manager = session.client("secretsmanager", endpoint_url=endpoint)
    keys = 0
    for page in secrets_manager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [settings.secret_prefix]}]
    ):
        keys += sum(1 for s in page["SecretList"] if s["Name"].startswith(settings.secret_prefix))
    kms_key = "none"
    for page in session.client("kms", endpoint_url=endpoint).get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias["AliasName"] == settings.kms_key_id:
                kms_key = f"{alias.get('TargetKeyId')} ({settings.kms_key_id})"
    parts = [
        plural(tenants, "tenant"),
        plural(cas, "CA certificate"),
        plural(keys, "CA key") + " (secrets)",
        plural(count("tokens"), "token"),
        plural(count("requests"), "certificate request"),
        plural(
            count(
                "certificates",
                FilterExpression="#k = :k",
                ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":k": {"S": "seacat"}},
            ),
            "client certificate",
        ),
        plural(count("identities"), "identity"),
        plural(count("certificates", IndexName="revoked-index"), "revocation"),
    ]
    try:
        parts.append(plural(count("audit"), "audit item"))
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    return ", ".join(parts) + f"; KMS key {kms_key}"


def template_changed(stage: str, endpoint: str) -> bool:
    """True if the stack in the saved state was deployed from another infra/resources.yaml."""
    import boto3

    from scripts.emulator import TEMPLATE

    cfn = boto3.session.Session().client("cloudformation", endpoint_url=endpoint)
    body = cfn.get_template(StackName=f"seacat-{stage}-resources")["TemplateBody"]
    return not isinstance(body, str) or body.strip() != TEMPLATE.read_text().strip()


def refuse(data: Path, reason: str) -> int:
    print(
        f"seacat: cannot start from the saved state in {shown(data)}: {reason}.\n"
        f"  The saved state was left as it is. To start empty, `make reset-emulator` deletes it (it holds the "
        "tenants' CA private keys: copy it first if you need them); or set SEACAT_DATA_DIR to another "
        "directory and keep this one.",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_NOT_RESTORED


def reset(data: Path) -> int:
    """Delete the data directory (make reset-emulator); refuses while a run uses it or if it is not ours."""
    from scripts import journal

    try:
        writes = (data / journal.JOURNAL).read_bytes().count(b"\n")
    except OSError:
        writes = 0
    return datadir.reset(
        data,
        journal.OUR_FILES,
        f"{plural(writes, 'saved write')}: every tenant, CA key, token and certificate of the emulator run",
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--reset"]:
        return reset(datadir.data_dir(DEFAULT_DATA_DIR))
    if args:
        print("usage: python -m scripts.local_run [--reset]", file=sys.stderr)
        return 2
    started = time.monotonic()
    stage = os.environ.get("SEACAT_LOCAL_STAGE", "local")
    port = int(os.environ.get("PORT", "8080"))
    emulator_port = int(os.environ.get("SEACAT_EMULATOR_PORT", "0"))
    data = datadir.data_dir(DEFAULT_DATA_DIR)

    # Fake credentials: nothing here may reach AWS.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    sys.path.insert(0, str(ROOT))
    from chalicelib.context import LOCAL_DATABASE
    from scripts.journal import InUse, StateError

    if (data / LOCAL_DATABASE).exists():  # the two runs never share a directory
        print(
            f"seacat: {shown(data)} holds {LOCAL_DATABASE}, the state of `make run` (SQLite and the local key "
            "store), which the emulator cannot read. Nothing was changed. Serve it with `make run`, or set "
            "SEACAT_DATA_DIR to another directory for make run-emulator.",
            file=sys.stderr,
        )
        return EXIT_NOT_RESTORED
    try:
        emulator = start_emulator(emulator_port, data)
    except InUse:
        print(
            f"seacat: another make run is using {shown(data)}; stop it first, or set SEACAT_DATA_DIR to "
            "another directory",
            file=sys.stderr,
        )
        return EXIT_NOT_RESTORED
    except StateError as exc:
        return refuse(data, str(exc))
    endpoint = emulator.endpoint
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.update(stage_environment(stage))

    from scripts.emulator import deploy_stack

    deploy_stack(stage, endpoint)
    if emulator.restored:
        try:
            summary = state_summary(endpoint)
        except Exception as exc:  # counting is a courtesy; the state is restored all the same
            summary = f"(could not count what it holds: {type(exc).__name__})"
        print(
            f"seacat: restored {shown(data)} ({plural(emulator.restored, 'saved write')} replayed in "
            f"{emulator.replay_seconds:.1f} s): {summary}",
            flush=True,
        )
        if template_changed(stage, endpoint):
            emulator.notes.append(
                "infra/resources.yaml changed since this state was saved; the emulator keeps the resources "
                "it was saved with (make reset to deploy the new ones)"
            )
    else:
        print(f"seacat: no saved state in {shown(data)}: starting empty; every change is saved there", flush=True)
    for note in emulator.notes:
        print(f"seacat: note: {note}", flush=True)

    from chalicelib.service import tokens

    token = os.environ.get("SEACAT_ADMIN_TOKEN") or datadir.operator_token(data)
    tokens.install_operator_token(token)

    chalice = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chalice"),
            "local",
            "--stage",
            stage,
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-autoreload",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if chalice.poll() is None:
            chalice.terminate()
            try:
                chalice.wait(timeout=5)
            except subprocess.TimeoutExpired:
                chalice.kill()
        emulator.stop()
        print(f"seacat: stopped; the state is saved in {shown(data)}", flush=True)

    def on_term(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    url = f"http://{HOST}:{port}"
    try:
        if not wait_healthy(url, time.monotonic() + 60) or chalice.poll() is not None:
            print(f"seacat: the service did not start on {url}", file=sys.stderr)
            stop()
            return 1
        print(
            f"\nSeaCat PKI is running on {url} (ready in {time.monotonic() - started:.1f} s)\n"
            f"  AWS emulator:  {endpoint} (moto; state saved in {shown(data)})\n"
            f"  Admin token:   {token}\n"
            f"Try:  curl -X PUT -H 'Authorization: Bearer {token}' {url}/tenants/TENANT\n"
            "Ctrl-C stops it.\n",
            flush=True,
        )
        chalice.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


def exit_now(status: int) -> None:
    """Exit without the interpreter's teardown: freeing a large emulator state object by object
    takes seconds, and nothing needs it (the journal is on disk, the lock and chalice are gone)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    try:
        status = main()
    except KeyboardInterrupt:  # Ctrl-C while starting: every write so far is on disk already
        print("seacat: interrupted while starting", file=sys.stderr)
        status = 130
    except SystemExit as exc:  # SIGTERM's handler stopped everything already
        status = exc.code if isinstance(exc.code, int) else 1
    exit_now(status)
