"""Shared fixtures: fake AWS credentials, moto, tables and the KMS key from infra/, a test client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.moto_stack import share_botocore_data

pytest_plugins = ["tests.secret_scan"]
ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "seacat-cr-vectors.json").read_text())

# Never reach AWS: fake credentials before anything creates a client.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

# The suite tests Ctrl-C (SIGINT) of the servers and the CLI it starts. A shell without job control
# starts a background command (`.ci/run &`) with SIGINT and SIGQUIT ignored, and every child inherits
# that, so a test's SIGINT would be ignored: give the children the defaults back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
share_botocore_data()  # the service's per-test cold starts share botocore's parsed models (tests/moto_stack.py)

TEST_ENV = {
    "SEACAT_STAGE": "test",
    "SEACAT_TABLE_PREFIX": "seacat-test",
    "SEACAT_SECRET_PREFIX": "seacat/test/",
    "SEACAT_KMS_KEY_ID": "alias/seacat-test",
    "SEACAT_TENANT_CACHE_SECONDS": "0",
    "SEACAT_WEBHOOK_ALLOW_PRIVATE": "true",  # the tests' webhooks listen on 127.0.0.1
}


def reset_caches() -> None:
    """A fresh context (ports, caches), settings and AWS connections, as a new container has."""
    from chalicelib import context

    context.reset()


def deploy_resources(stage: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Create the stage's tables and KMS key from infra/resources.yaml through CloudFormation.

    The in-process moto then rolls transactions back item by item, as make run's emulator does."""
    from scripts.emulator import deploy_stack, item_level_rollback

    item_level_rollback()
    return deploy_stack(stage, endpoint_url)


# Routes that need no token: the SeaCat clients' calls, the gateway's, the public CA bundle and CRL.
PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/console"),
    ("GET", "/console/{asset}"),
    ("GET", "/{tenant}/x509/ca"),
    ("GET", "/{tenant}/x509/crl"),
    ("GET", "/{tenant}/x509/crl/{ca_id}"),
    ("PUT", "/{tenant}/seacat/enroll"),
    ("POST", "/{tenant}/seacat/enroll"),
    ("GET", "/{tenant}/seacat/get/{identity}"),
    ("PUT", "/{tenant}/seacat/nginx_authenticate"),
    ("POST", "/{tenant}/seacat/nginx_authenticate"),
    # EST (RFC 7030): no bearer token (simpleenroll takes an enrolment credential, simplereenroll a
    # client certificate); the isolation tests leave them out as the other public routes.
    *(
        (method, f"/.well-known/est/{{tenant}}{label}/{op}")
        for label in ("", "/{profile}")
        for method, op in (
            ("GET", "cacerts"),
            ("GET", "csrattrs"),
            ("POST", "simpleenroll"),
            ("POST", "simplereenroll"),
        )
    ),
    ("POST", "/{tenant}/ocsp"),
    ("GET", "/{tenant}/ocsp/{request}"),
}


@contextlib.contextmanager
def moto_client(operator_token: str, **env: str) -> Iterator[Any]:
    """The app on moto with the stage's resources and an operator token, for one module's tests
    (module-scoped fixtures build on it; the per-test ``aws``/``client`` fixtures give the same, emptied per test)."""
    from chalice.test import Client
    from moto import mock_aws

    from app import app

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**TEST_ENV, **env}.items():
            mp.setenv(name, value)
        with mock_aws():
            reset_caches()
            deploy_resources("test")
            from chalicelib.service import tokens

            tokens.install_operator_token(operator_token)
            with Client(app, stage_name="test", project_dir=str(ROOT)) as client:
                yield client
        reset_caches()


@contextlib.contextmanager
def memory_client(monkeypatch: pytest.MonkeyPatch, operator_token: str, **env: str) -> Iterator[tuple[Any, Any]]:
    """The app on the in-memory ports with an operator token: (the test client, the context's backend);
    ``env`` on top of TEST_ENV. The context is reset afterwards, as a new container has it."""
    from chalice.test import Client

    from app import app
    from chalicelib import context
    from chalicelib.service import tokens

    for name, value in {**TEST_ENV, **env}.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    backend = context.use_memory()
    tokens.install_operator_token(operator_token)
    try:
        with Client(app, stage_name="test", project_dir=str(ROOT)) as client:
            yield client, backend
    finally:
        context.reset()
        reset_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with the stage's stack, empty: deployed once per process and emptied for each test
    (tests/moto_stack.py); the service's caches reset as a new container has them."""
    from tests.moto_stack import shared

    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    with shared.fresh():
        reset_caches()
        yield
    reset_caches()


@pytest.fixture
def operator_token(aws: None) -> str:
    from chalicelib.service import tokens

    token = "sct_00000000000000aa_operator-test-token-0123456789"
    tokens.install_operator_token(token)
    return token


@pytest.fixture
def client(aws: None) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test", project_dir=str(ROOT)) as c:
        yield c


REFERENCE_SPEC = """{
"serialNumber": 1,
"subject": {
"O": "My Org", "CN": "Root CA"
},
"validity": {
"notBefore": "now",
"notAfter": { "weeks": 1040 }
},
"extensions": [
{ "basicConstraints": {
"CA": true,
"pathLen": 0
}, "critical": true } ,
{ "keyUsage": [
"keyCertSign",
"cRLSign"
] }
]
}"""
