"""`make run`: the service on 127.0.0.1 with its embedded AWS emulator, no AWS account needed.

Starts moto in server mode on 127.0.0.1, deploys infra/resources.yaml into it (tables and KMS
key, exactly as on AWS), installs the operator token, then serves the app with `chalice local`.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def stage_environment(stage: str) -> dict[str, str]:
    """The environment `chalice local` gives the app for this stage, so this process matches it."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def start_emulator(port: int) -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator call is noise
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def wait_healthy(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def main() -> int:
    started = time.monotonic()
    stage = os.environ.get("SEACAT_LOCAL_STAGE", "local")
    port = int(os.environ.get("PORT", "8080"))
    emulator_port = int(os.environ.get("SEACAT_EMULATOR_PORT", "0"))

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
    server, endpoint = start_emulator(emulator_port)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.update(stage_environment(stage))

    sys.path.insert(0, str(ROOT))
    from scripts.emulator import deploy_stack

    deploy_stack(stage, endpoint)

    from chalicelib.service import tokens

    token = os.environ.get("SEACAT_ADMIN_TOKEN") or f"sct_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    tokens.install_operator_token(token)

    chalice = subprocess.Popen(
        [str(Path(sys.executable).parent / "chalice"), "local", "--stage", stage, "--host", HOST, "--port", str(port),
         "--no-autoreload"],
        cwd=ROOT,
        env=os.environ.copy(),
    )

    def stop(*_: object) -> None:
        if chalice.poll() is None:
            chalice.terminate()
            try:
                chalice.wait(timeout=5)
            except subprocess.TimeoutExpired:
                chalice.kill()
        server.stop()

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
            f"  AWS emulator:  {endpoint} (moto, in memory)\n"
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


if __name__ == "__main__":
    sys.exit(main())
