"""`make package`: the one deployable template and the Lambda zip, checked offline.

Packaging runs once per session (about 15-40 s: chalice downloads the Lambda platform's wheels from
PyPI on a cold cache, then reuses .chalice/deployments/). No AWS API is called: the run gets fake
credentials and an AWS endpoint on a closed local port, so any AWS call would fail it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

STAGE = "dev"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
PROTECTED = ("secretsmanager", "kms", "dynamodb", "logs")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    venv = sys.prefix  # the environment running the tests: its python, chalice and cfn-lint
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_PROFILE", "MAKE", "MFLAGS"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # nothing listens: an AWS call would fail, not reach AWS
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            f"{venv}/.installed-run",
            "-o",
            f"{venv}/.installed-dev",
            f"VENV={venv}",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("package") / STAGE
    started = time.monotonic()
    run = _make("package", f"STAGE={STAGE}", f"OUT={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    zip_size = (out / "deployment.zip").stat().st_size
    print(
        f"\nmake package: {time.monotonic() - started:.1f} s, deployment.zip {zip_size / 2**20:.1f} MiB",
        file=sys.stderr,
    )
    yield out


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    # chalice writes plain YAML (intrinsics in their long forms), so no CloudFormation tags to load
    return dict(yaml.safe_load((packaged / "sam.yaml").read_text()))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- cfn-lint --------------------------------------------------------------------------------


def test_cfn_lint_finds_nothing(packaged: Path) -> None:
    lint = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--regions",
            "eu-west-1",
            "us-east-1",
            "--",
            str(packaged / "sam.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # exit code bits: 2 errors, 4 warnings, 8 informational
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- IAM -------------------------------------------------------------------------------------


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            assert "ManagedPolicyArns" not in props, f"{name}: managed policies are not least privilege"
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            yield name, props["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            assert "Policies" not in props, f"{name}: SAM policies would add a role of SAM's own"


def test_the_function_runs_as_the_service_role_and_no_other_role_exists(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    roles = [n for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert roles == ["ServiceRole"]
    functions = [n for n, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")]
    assert functions == ["APIHandler"]
    handler = resources["APIHandler"]
    assert handler["Properties"]["Role"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    assert set(handler["DependsOn"]) >= {"ServicePolicy", "FunctionLogGroup"}
    assert resources["ServicePolicy"]["Properties"]["Roles"] == [{"Ref": "ServiceRole"}]
    trust = resources["ServiceRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    tables = sorted(n for n, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table")
    with_indexes = sorted(n for n in tables if resources[n]["Properties"].get("GlobalSecondaryIndexes"))
    assert len(tables) == 6 and with_indexes == ["CertificatesTable", "RequestsTable"]
    seen: dict[str, list[Any]] = {service: [] for service in PROTECTED}
    documents = list(_policy_documents(template))
    assert [name for name, _ in documents] == ["ServicePolicy"]
    for name, document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", statement
            actions = _listed(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement
            services = {a.split(":", 1)[0] for a in actions}
            assert len(services) == 1, f"one service per statement: {statement}"
            (service,) = services
            assert service in PROTECTED, f"{name}: unexpected service {service}"
            resource = _listed(statement["Resource"])
            assert "*" not in resource and all(r != "*" for r in resource), f"{name}: Resource * for {service}"
            seen[service].append(statement)

    secrets, deletion, rotation, ocsp_signers = seen["secretsmanager"]
    assert secrets["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:seacat/${Stage}/*"
    }
    assert sorted(secrets["Action"]) == [
        "secretsmanager:CreateSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:TagResource",
    ]
    # a secret is deleted (scheduled, with a recovery window) only where it is a CA key
    assert _listed(deletion["Action"]) == ["secretsmanager:DeleteSecret"]
    assert deletion["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:seacat/${Stage}/*/"
            + name
        }
        for name in ("ca-key-??????", "ca-key-????????????????-??????")
    ]
    # a secret is replaced only where it is the webhook's signing key, never a CA key ...
    assert _listed(rotation["Action"]) == ["secretsmanager:PutSecretValue"]
    assert rotation["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:seacat/${Stage}/*/webhook-secret-??????"
    }
    # ... or a CA certificate's delegated OCSP responder (its key and certificate, re-issued every few days)
    assert _listed(ocsp_signers["Action"]) == ["secretsmanager:PutSecretValue"]
    assert ocsp_signers["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:seacat/${Stage}/*/ocsp-signer-????????????????-??????"
    }

    (key,) = seen["kms"]
    assert key["Resource"] == {"Fn::GetAtt": ["CaKey", "Arn"]}
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}},
        "StringLike": {"kms:EncryptionContext:SecretARN": secrets["Resource"]},
    }

    table_arns = [{"Fn::GetAtt": [t, "Arn"]} for t in tables]
    index_arns = [{"Fn::Sub": f"${{{t}.Arn}}/index/*"} for t in with_indexes]
    dynamodb = seen["dynamodb"]
    assert sorted((r for s in dynamodb for r in _listed(s["Resource"])), key=json.dumps) == sorted(
        table_arns + index_arns, key=json.dumps
    )
    for statement in dynamodb:
        if any(r in index_arns for r in _listed(statement["Resource"])):
            assert _listed(statement["Action"]) == ["dynamodb:Query"]
        assert not {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:DeleteTable"} & set(_listed(statement["Action"]))

    (logs,) = seen["logs"]
    assert logs["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/seacat-pki-${Stage}:*"
    }
    assert resources["APIHandler"]["Properties"]["FunctionName"] == {"Fn::Sub": "seacat-pki-${Stage}"}
    assert resources["FunctionLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/seacat-pki-${Stage}"}


def test_exactly_the_service_role_and_the_key_policy_administrators_can_read_ca_keys(template: dict[str, Any]) -> None:
    """Who can read a tenant's CA key, in the template that is deployed: kms:Decrypt, and every action
    its holder can turn into Decrypt alone (CreateGrant, PutKeyPolicy, ReEncryptFrom, ReplicateKey,
    wildcards expanded), from the key policy and from the IAM policies it lets the account delegate."""
    from tests.integration.test_infra import EXPECTED_DECRYPT_PATHS, decrypt_paths

    assert (
        decrypt_paths(template)
        == EXPECTED_DECRYPT_PATHS
        == {
            (
                "ServiceRole",
                "kms:Decrypt",
                "through Secrets Manager in the stack's region, for secrets under seacat/<stage>/",
            ),
            ("the account (IAM principals its IAM policies allow)", "kms:PutKeyPolicy", "unconditionally"),
        }
    )


def test_the_template_deploys_only_as_the_packaged_stage(template: dict[str, Any]) -> None:
    stage = template["Parameters"]["Stage"]
    assert stage["AllowedValues"] == [STAGE] and stage["Default"] == STAGE


# --- Lambda and API Gateway -------------------------------------------------------------------


def test_lambda_settings(template: dict[str, Any]) -> None:
    props = template["Resources"]["APIHandler"]["Properties"]
    assert props["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}" == "python3.11"
    assert props["Architectures"] == ["x86_64"]
    assert props["MemorySize"] == 1024
    # API Gateway's REST integration timeout is 29 s: a longer function timeout is work nobody waits for.
    webhook = float(props["Environment"]["Variables"]["SEACAT_WEBHOOK_TIMEOUT"])
    assert webhook < props["Timeout"] <= 29
    expected = {**CONFIG["environment_variables"], **CONFIG["stages"][STAGE]["environment_variables"]}
    assert props["Environment"]["Variables"] == expected
    assert props["CodeUri"] == "./deployment.zip"


def test_api_binary_media_types_and_endpoint(template: dict[str, Any]) -> None:
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["DefinitionBody"]["x-amazon-apigateway-binary-media-types"] == ["*/*"]
    assert api["EndpointConfiguration"] == "REGIONAL"


def test_api_throttling(template: dict[str, Any]) -> None:
    api = template["Resources"]["RestAPI"]["Properties"]
    paths = api["DefinitionBody"]["paths"]
    params = template["Parameters"]
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in api["MethodSettings"]}
    stage_wide = settings.pop(("/*", "*"))
    assert (stage_wide["ThrottlingRateLimit"], stage_wide["ThrottlingBurstLimit"]) == (
        {"Ref": "ApiRateLimit"},
        {"Ref": "ApiBurstLimit"},
    )
    public = {
        ("/{tenant}/seacat/enroll", "POST"),
        ("/{tenant}/seacat/enroll", "PUT"),
        ("/{tenant}/seacat/get/{identity}", "GET"),
    }
    # ResourcePath: "/" then the route with its slashes written "~1" (API Gateway's encoding)
    assert all(path.startswith("/~1") for path, _ in settings)
    assert {(path[1:].replace("~1", "/"), method) for path, method in settings} == public
    for (path, method), setting in settings.items():
        assert method.lower() in paths[path[1:].replace("~1", "/")], (path, method)  # a real route of the API
        assert (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]) == (
            {"Ref": "PublicRateLimit"},
            {"Ref": "PublicBurstLimit"},
        )
    assert params["PublicRateLimit"]["Default"] <= params["ApiRateLimit"]["Default"]
    assert params["PublicBurstLimit"]["Default"] <= params["ApiBurstLimit"]["Default"]


# --- the zip ---------------------------------------------------------------------------------


def _elf_machine(data: bytes) -> tuple[int, int]:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    return data[4], struct.unpack_from("<H", data, 18)[0]  # (EI_CLASS, e_machine)


def test_zip_has_cryptography_for_lambda_x86_64_linux(packaged: Path) -> None:
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        names = z.namelist()
        assert "app.py" in names and "chalicelib/store/models.py" in names
        assert not [n for n in names if n.startswith(("tests/", "scripts/", "seacat_client/", ".venv/", "infra/"))]
        wheel = next(n for n in names if re.fullmatch(r"cryptography-[^/]+\.dist-info/WHEEL", n))
        tags = [line.split(": ", 1)[1] for line in z.read(wheel).decode().splitlines() if line.startswith("Tag: ")]
        assert tags and all(re.fullmatch(r"cp3\d+-(abi3|cp311)-manylinux[_0-9a-z]*_x86_64", t) for t in tags), tags
        assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
        binaries = [n for n in names if n.endswith(".so") or ".so." in n]
        for name in binaries:
            assert _elf_machine(z.read(name)[:20]) == (2, 62), f"{name} is not a 64-bit x86-64 ELF"
        unpacked = sum(i.file_size for i in z.infolist())
    # Lambda: 50 MB zipped for a direct upload, 250 MB unzipped
    assert (packaged / "deployment.zip").stat().st_size < 50 * 10**6
    assert unpacked < 250 * 10**6


# --- make deploy (printed, never run) ---------------------------------------------------------


def test_make_deploy_uploads_and_deploys_the_packaged_template() -> None:
    run = _make("-n", "deploy", "STAGE=prod", "BUCKET=example-bucket", "OUT=dist/prod")
    assert run.returncode == 0, run.stderr
    commands = " ".join(run.stdout.replace("\\\n", " ").split())
    assert "--merge-template dist/prod/merge-template.yaml dist/prod" in commands
    assert (
        "aws cloudformation package" in commands
        and "--template-file dist/prod/sam.yaml --s3-bucket example-bucket" in commands
    )
    assert re.search(
        r"aws cloudformation deploy .*--template-file dist/prod/packaged\.yaml --stack-name seacat-pki-prod "
        r"--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --parameter-overrides Stage=prod",
        commands,
    ), commands
