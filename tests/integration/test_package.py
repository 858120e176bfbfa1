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


def transform(template: dict[str, Any], region: str = "eu-west-1") -> dict[str, Any]:
    """The template CloudFormation deploys: the SAM transform (aws-sam-translator, offline) of ``template``,
    its local CodeUri replaced by an S3 location as `aws cloudformation package` does."""
    import copy

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://example-bucket/seacat-pki/deployment.zip"
    # a boto3 Session only names the region here: the translator calls no AWS API without managed policies
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    return dict(translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: {}))


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return transform(template)


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
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            yield name, props["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            assert "Policies" not in props, f"{name}: SAM policies would add a role of SAM's own"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            props = resource["Properties"]
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]


def test_the_functions_run_as_the_service_role_and_no_other_role_exists(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    roles = {n: r.get("Condition") for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    # API Gateway's account-wide logging role, only when the stack is to set it (ApiGatewayAccountRole=create)
    assert roles == {"ServiceRole": None, "ApiGatewayLogsRole": "CreateApiGatewayLogsRole"}
    functions = [n for n, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")]
    assert sorted(functions) == ["APIHandler", "Upkeep"]
    for name, log_group in (("APIHandler", "FunctionLogGroup"), ("Upkeep", "UpkeepLogGroup")):
        function = resources[name]
        assert function["Properties"]["Role"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}, name
        assert set(function["DependsOn"]) >= {"ServicePolicy", log_group}, name
    assert resources["ServicePolicy"]["Properties"]["Roles"] == [{"Ref": "ServiceRole"}]
    trust = resources["ServiceRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    tables = sorted(n for n, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table")
    with_indexes = sorted(n for n in tables if resources[n]["Properties"].get("GlobalSecondaryIndexes"))
    assert len(tables) == 6 and with_indexes == ["CertificatesTable", "RequestsTable", "TokensTable"]
    seen: dict[str, list[Any]] = {service: [] for service in PROTECTED}
    documents = dict(_policy_documents(template))
    assert sorted(documents) == ["ApiGatewayLogsRole", "ServicePolicy", "TracingPolicy"]
    # X-Ray takes no resource ARN: "*", for its two write actions, only while tracing is on
    tracing = resources["TracingPolicy"]
    assert tracing["Condition"] == "TracingActive" and tracing["Properties"]["Roles"] == [{"Ref": "ServiceRole"}]
    assert documents["TracingPolicy"]["Statement"] == [
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}
    ]
    # API Gateway's logging role: the actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs, on log groups of
    # this account and region (it serves every REST API there), assumable by API Gateway only
    logs_role = resources["ApiGatewayLogsRole"]["Properties"]
    assert logs_role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    (push,) = documents["ApiGatewayLogsRole"]["Statement"]
    assert {a.split(":")[0] for a in push["Action"]} == {"logs"} and not any("*" in a for a in push["Action"])
    assert push["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}
    for name, document in [("ServicePolicy", documents["ServicePolicy"])]:
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

    # per table, what the code calls (tests/integration/test_iam_calls.py checks each against the calls)
    granted = {
        (action, json.dumps(resource, sort_keys=True))
        for statement in seen["dynamodb"]
        for action in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
    }
    table = lambda name: json.dumps({"Fn::GetAtt": [name, "Arn"]})  # noqa: E731
    index = lambda name, i: json.dumps({"Fn::Sub": f"${{{name}.Arn}}/index/{i}"})  # noqa: E731
    rw = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
    assert granted == (
        {(a, table(t)) for a in rw for t in ("TenantsTable", "TokensTable", "CertificatesTable", "IdentitiesTable")}
        | {("dynamodb:GetItem", table("RequestsTable")), ("dynamodb:PutItem", table("RequestsTable"))}
        | {("dynamodb:PutItem", table("AuditTable")), ("dynamodb:Query", table("AuditTable"))}
        | {("dynamodb:Scan", table("TenantsTable"))}
        | {
            ("dynamodb:Query", index(t, i))
            for t, i in (
                ("CertificatesTable", "identity-index"),
                ("CertificatesTable", "revoked-index"),
                ("CertificatesTable", "ca-index"),
                ("RequestsTable", "pending-index"),
                ("TokensTable", "credential-index"),
            )
        }
    )
    assert {t for t in tables} == {json.loads(r)["Fn::GetAtt"][0] for _, r in granted if "GetAtt" in r}

    (logs,) = seen["logs"]
    assert logs["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/" + name + ":*"}
        for name in ("seacat-pki-${Stage}", "seacat-pki-${Stage}-upkeep")
    ]
    for function, group in (("APIHandler", "FunctionLogGroup"), ("Upkeep", "UpkeepLogGroup")):
        name = resources[function]["Properties"]["FunctionName"]["Fn::Sub"]
        assert resources[group]["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}


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


RUNTIME = "python3.13"  # Makefile's LAMBDA_RUNTIME: docs/deploy.md, "Runtime and architecture"


def test_lambda_settings(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    props = resources["APIHandler"]["Properties"]
    assert props["Runtime"] == RUNTIME
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 1024
    # API Gateway's REST integration timeout is 29 s: a longer function timeout is work nobody waits for.
    webhook = float(props["Environment"]["Variables"]["SEACAT_WEBHOOK_TIMEOUT"])
    assert webhook < props["Timeout"] <= 29
    expected = {**CONFIG["environment_variables"], **CONFIG["stages"][STAGE]["environment_variables"]}
    assert props["Environment"]["Variables"] == expected
    assert props["CodeUri"] == "./deployment.zip"
    assert props["Tracing"] == {"Ref": "Tracing"}
    # with tracing on, the functions are created after the role may write to X-Ray (Lambda checks it)
    waits = {"Fn::If": ["TracingActive", {"Ref": "TracingPolicy"}, "none"]}
    assert props["Tags"]["seacat:tracing-policy"] == resources["Upkeep"]["Properties"]["Tags"]["seacat:tracing-policy"]
    assert props["Tags"]["seacat:tracing-policy"] == waits
    # reserved concurrency only when asked for, never 0 (that would stop the API)
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    condition = template["Conditions"]["ReserveConcurrency"]
    assert condition == {
        "Fn::Not": [
            {
                "Fn::Or": [
                    {"Fn::Equals": [{"Ref": "ReservedConcurrency"}, -1]},
                    {"Fn::Equals": [{"Ref": "ReservedConcurrency"}, 0]},
                ]
            }
        ]
    }
    assert template["Parameters"]["ReservedConcurrency"]["Default"] == -1
    # the hourly upkeep: same code, environment and runtime, time for every tenant
    upkeep = resources["Upkeep"]["Properties"]
    assert upkeep["Handler"] == "chalicelib.jobs.upkeep.upkeep"
    assert upkeep["Events"] == {"UpkeepEvent": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}}
    assert upkeep["FunctionName"] == {"Fn::Sub": "seacat-pki-${Stage}-upkeep"}
    assert (upkeep["Runtime"], upkeep["Architectures"], upkeep["Environment"]) == (
        RUNTIME,
        ["arm64"],
        props["Environment"],
    )
    assert "ReservedConcurrentExecutions" not in upkeep and upkeep["Timeout"] == 300


def test_the_transformed_template_has_one_stage_and_it_has_the_throttles(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    """Without OpenApiVersion the SAM transform adds a stage named "Stage" (the deployment's StageName)
    that has none of the method settings: every limit could be bypassed through /Stage/..."""
    resources = transformed["Resources"]
    stages = {n: r for n, r in resources.items() if r["Type"] == "AWS::ApiGateway::Stage"}
    deployments = {n: r for n, r in resources.items() if r["Type"] == "AWS::ApiGateway::Deployment"}
    assert list(stages) == ["RestAPIapiStage"] and len(deployments) == 1
    ((deployment_name, deployment),) = deployments.items()
    assert "StageName" not in deployment["Properties"]  # a deployment with a StageName creates that stage
    stage = stages["RestAPIapiStage"]["Properties"]
    assert stage["StageName"] == "api" and stage["DeploymentId"] == {"Ref": deployment_name}
    assert stage["MethodSettings"] == template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert {"ResourcePath": "/*", "HttpMethod": "*"}.items() <= stage["MethodSettings"][0].items()
    # its access log and tracing option survive the transform
    assert stage["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["AccessLogGroup", "Arn"]}
    assert stage["TracingEnabled"] == {"Fn::If": ["TracingActive", True, False]}
    # the functions wait for the X-Ray policy when tracing is on (a reference, through the transform)
    for function in ("APIHandler", "Upkeep"):
        tags = {t["Key"]: t["Value"] for t in resources[function]["Properties"]["Tags"]}
        assert tags["seacat:tracing-policy"] == {"Fn::If": ["TracingActive", {"Ref": "TracingPolicy"}, "none"]}
    # the web ACL is on that stage
    association = resources["WebAclAssociation"]["Properties"]["ResourceArn"]["Fn::Sub"]
    assert association.endswith("/restapis/${RestAPI}/stages/${RestAPIapiStage}")
    # the stage is made after API Gateway's account has a logging role (when this stack sets it)
    rest_api = resources["RestAPI"]["Properties"]
    assert "${ApiGatewayAccount}" in json.dumps(rest_api["Description"])
    assert rest_api["Name"] == {"Fn::Sub": "seacat-pki-${Stage}"}


def test_a_custom_domains_base_path_mapping_waits_for_the_stage(packaged: Path, tmp_path: Path) -> None:
    """chalice writes the mapping's Stage as the stage's name, with no dependency on the stage: CloudFormation
    may create it first ("Invalid stage identifier specified"). The merge template makes it a reference."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    for name in ("app.py", "chalicelib", "requirements.txt"):
        (project / name).symlink_to(ROOT / name)
    config = json.loads(json.dumps(CONFIG))
    config["stages"]["domain"] = {
        **config["stages"]["dev"],
        "api_gateway_custom_domain": {
            "domain_name": "pki.example.com",
            "certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000000",
            "tls_version": "TLS_1_2",
        },
    }
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    # the dependencies make package has just built for the runtime (the packaged fixture), not a second download
    (project / ".chalice" / "deployments").symlink_to(ROOT / ".chalice" / "deployments")
    merge = tmp_path / "merge.yaml"
    infra = [str(ROOT / "infra" / f) for f in ("resources.yaml", "api.yaml", "monitoring.yaml", "waf.yaml")]
    chalice_config = str(project / ".chalice" / "config.json")
    script = str(ROOT / "infra" / "merge_templates.py")
    run = subprocess.run(
        [sys.executable, script, "--stage", "domain", "--chalice-config", chalice_config, "--out", str(merge), *infra],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"}
    package = [sys.executable, str(ROOT / "infra" / "chalice_package.py"), "--runtime", RUNTIME]
    # --pkg-format cloudformation --template-format yaml are chalice's defaults: the same command as make package
    run = subprocess.run(
        [*package, "package", "--stage", "domain", "--merge-template", str(merge), str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    packaged = yaml.safe_load((out / "sam.yaml").read_text())
    mapping = packaged["Resources"]["ApiGatewayCustomDomainMapping"]["Properties"]
    assert mapping["Stage"] == {"Ref": "RestAPI.Stage"}
    resources = transform(packaged)["Resources"]
    mapping = resources["ApiGatewayCustomDomainMapping"]["Properties"]
    assert mapping["Stage"] == {"Ref": "RestAPIapiStage"}  # the stage resource: CloudFormation waits for it
    assert resources["RestAPIapiStage"]["Type"] == "AWS::ApiGateway::Stage"
    assert mapping["DomainName"] == {"Ref": "ApiGatewayCustomDomain"}


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


EM_AARCH64 = 183
PYC_MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"  # CPython 3.13's bytecode (importlib.util.MAGIC_NUMBER)


def test_zip_has_the_runtimes_wheels_for_lambda_arm64(packaged: Path) -> None:
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        names = z.namelist()
        assert "app.py" in names and "chalicelib/store/models.py" in names and "chalicelib/jobs/upkeep.py" in names
        assert not [n for n in names if n.startswith(("tests/", "scripts/", "seacat_client/", ".venv/", "infra/"))]

        def tags(project: str) -> list[str]:
            wheel = next(n for n in names if re.fullmatch(rf"{project}-[^/]+\.dist-info/WHEEL", n))
            return [line.split(": ", 1)[1] for line in z.read(wheel).decode().splitlines() if line.startswith("Tag: ")]

        # cryptography's stable-ABI wheel and cffi's CPython 3.13 one, both for glibc Linux on aarch64 (Lambda's
        # python3.13 runtime runs on Amazon Linux 2023, glibc 2.34)
        crypto, cffi = tags("cryptography"), tags("cffi")
        assert crypto and all(re.fullmatch(r"cp3\d+-abi3-manylinux(2014|_2_\d+)_aarch64", t) for t in crypto), crypto
        assert cffi and all(re.fullmatch(r"cp313-cp313-manylinux(2014|_2_\d+)_aarch64", t) for t in cffi), cffi
        assert all(int(re.findall(r"_2_(\d+)_", t)[0]) <= 34 for t in crypto + cffi if "_2_" in t)
        assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
        assert "_cffi_backend.cpython-313-aarch64-linux-gnu.so" in names
        binaries = [n for n in names if n.endswith(".so") or ".so." in n]
        assert not [n for n in binaries if "x86_64" in n or "cpython-311" in n], binaries
        for name in binaries:
            assert _elf_machine(z.read(name)[:20]) == (2, EM_AARCH64), f"{name} is not a 64-bit aarch64 ELF"
        # the bytecode is the runtime's: 3.13's cache names and magic number (infra/precompile.py)
        pyc = z.read("__pycache__/app.cpython-313.pyc")
        assert pyc[:4] == PYC_MAGIC_313
        assert not [n for n in names if n.endswith(".pyc") and "cpython-313" not in n]
        unpacked = sum(i.file_size for i in z.infolist())
    # Lambda: 50 MB zipped for a direct upload, 250 MB unzipped
    assert (packaged / "deployment.zip").stat().st_size < 50 * 10**6
    assert unpacked < 250 * 10**6


# --- make deploy (printed, never run) ---------------------------------------------------------


def test_make_deploy_uploads_the_template_and_protects_the_tables_once_created(packaged: Path) -> None:
    # more than CloudFormation takes inline (51,200 bytes): the deploy must upload it (--s3-bucket)
    assert (packaged / "sam.yaml").stat().st_size > 51_200
    run = _make("-n", "deploy", "STAGE=prod", "BUCKET=example-bucket", "OUT=dist/prod")
    assert run.returncode == 0, run.stderr
    commands = " ".join(run.stdout.replace("\\\n", " ").split())
    assert "--merge-template dist/prod/merge-template.yaml dist/prod" in commands
    assert (
        "aws cloudformation package" in commands
        and "--template-file dist/prod/sam.yaml --s3-bucket example-bucket" in commands
    )
    deploy = (
        r"aws cloudformation deploy --region \S+ --template-file dist/prod/packaged\.yaml --stack-name seacat-pki-prod "
        r"--s3-bucket example-bucket --s3-prefix seacat-pki/prod --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND "
        r"--no-fail-on-empty-changeset --parameter-overrides Stage=prod TableDeletionProtection="
    )
    # a stack that does not exist yet is created with unprotected tables, then updated to protect them
    first, then = re.findall(deploy + r"(\w+)", commands)
    assert (first, then) == ("false", "true"), commands
    assert re.search(r"describe-stacks .*--stack-name seacat-pki-prod .*does not exist.*then", commands)


# --- alarms, dashboard, logs ------------------------------------------------------------------

ALARM_ACTION = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def test_every_alarm_notifies_the_topic(template: dict[str, Any]) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [ALARM_ACTION] and props["OKActions"] == [ALARM_ACTION], name
        assert props["AlarmName"]["Fn::Sub"].startswith("seacat-pki-${Stage}-"), name
        assert "docs/deploy.md#alarms" in json.dumps(props["AlarmDescription"]), name
        assert props.get("TreatMissingData") in ("notBreaching", "missing", "breaching"), name
    # the topic: the one given, or one made here (and nothing else is notified)
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert _of_type(template, "AWS::SNS::Topic")["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    # what the issue asks for: the API, both functions, every table twice, the service's own metrics
    tables = [n.removesuffix("Table") for n in _of_type(template, "AWS::DynamoDB::Table")]
    expected = (
        {
            "Api5xxRate",
            "ApiFunctionErrors",
            "ApiFunctionThrottles",
            "ApiFunctionDurationP99",
            "WebhookFailureRate",
            "GatewayRefusalRate",
            "CaExpiryWarning",
            "CaExpiryCritical",
            "OcspSignerExpiry",
            "UpkeepFailures",
            "UpkeepErrors",
        }
        | {f"{t}TableThrottles" for t in tables}
        | {f"{t}TableSystemErrors" for t in tables}
    )
    assert set(alarms) == expected
    for table in tables:
        text = json.dumps(alarms[f"{table}TableThrottles"]) + json.dumps(alarms[f"{table}TableSystemErrors"])
        assert text.count(f"{table}Table") >= 3, table  # each alarm reads its own table
    # near the timeout: 80 % of the function's own
    duration = alarms["ApiFunctionDurationP99"]["Properties"]
    assert duration["Threshold"] == round(0.8 * template["Resources"]["APIHandler"]["Properties"]["Timeout"] * 1000)


def _emitted_metrics() -> dict[str, set[str]]:
    """Every SeaCatPKI metric chalicelib emits (observability.metric("Name", ..., Dimension=...)), with its
    dimensions besides Stage, read from the source."""
    import ast

    emitted: dict[str, set[str]] = {}
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "metric"
            ):
                continue
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                dims = {k.arg for k in node.keywords if k.arg and k.arg != "unit"}
                emitted.setdefault(node.args[0].value, set()).update(dims)
    return emitted


def test_the_alarms_and_the_dashboard_read_metrics_the_service_emits(template: dict[str, Any]) -> None:
    emitted = _emitted_metrics()
    assert {"Enrolments", "Authentications", "AuthenticationDenials", "WebhookFailures", "WebhookLatency"} <= set(
        emitted
    )
    assert emitted["ActiveCaDaysLeft"] == {"Tenant"} and emitted["DaysLeft"] == {"Task"}
    assert emitted["UpkeepFailures"] == set()
    alarms = json.dumps(_of_type(template, "AWS::CloudWatch::Alarm"))
    dashboard = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text = alarms + json.dumps(dashboard)

    # by MetricName (alarms), in a dashboard's metric arrays and SEARCH expressions, and in Metrics Insights
    # queries (FROM SCHEMA(SeaCatPKI, dims...))
    def named(value: Any) -> Iterator[str]:  # every {"Namespace": "SeaCatPKI", "MetricName": ...} inside
        if isinstance(value, dict):
            if value.get("Namespace") == "SeaCatPKI" and "MetricName" in value:
                yield value["MetricName"]
            for item in value.values():
                yield from named(item)
        elif isinstance(value, list):
            for item in value:
                yield from named(item)

    used = set(named(_of_type(template, "AWS::CloudWatch::Alarm")))
    used |= set(re.findall(r'\["SeaCatPKI", "(\w+)"', dashboard))
    used |= set(re.findall(r'MetricName=\\+"(\w+)\\+" Stage', text))
    schemas = re.findall(r"SELECT \w+\((\w+)\) FROM SCHEMA\(SeaCatPKI, ([\w, ]+)\)", text)
    used |= {name for name, _ in schemas}
    assert used <= set(emitted), used - set(emitted)
    assert {"Enrolments", "Authentications", "AuthenticationDenials", "ActiveCaDaysLeft", "UpkeepFailures"} <= used
    assert "DaysLeft" in used
    # DaysLeft per task: the upkeep's task names (the OCSP one is registered at merge: chalicelib/jobs/upkeep.py)
    from chalicelib.jobs.upkeep import TENANT_TASKS

    tasks = set(re.findall(r'"Name": "Task", "Value": "(\w+)"', text))
    assert tasks == {"ca_expiry", "ocsp_signers"} and "ca_expiry" in TENANT_TASKS
    for name, dims in schemas:
        if name in emitted:  # a schema names exactly the metric's dimensions, or the query finds nothing
            assert set(dims.replace(" ", "").split(",")) == {"Stage", *emitted[name]}, (name, dims)
    for outcome in ("allowed", "denied401", "denied403"):  # chalicelib/api/seacat.py: allowed or denied<status>
        assert f'"Value": "{outcome}"' in text


def test_the_dashboard_is_json_with_the_hot_paths(template: dict[str, Any]) -> None:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    resources, params = set(template["Resources"]), set(template["Parameters"])
    assert {n.split(".")[0] for n in names} <= resources | params | {"AWS::Region"}, names
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    for hot in ("Enrolments", "nginx_authenticate", "Refusals by reason", "Latency", "webhook", "Throttled", "CA"):
        assert any(hot.lower() in t.lower() for t in titles), (hot, titles)
    assert set(re.findall(r"\$\{(\w+)\.Arn\}", body)) == set(_of_type(template, "AWS::CloudWatch::Alarm")) - {
        n for n in _of_type(template, "AWS::CloudWatch::Alarm") if n.endswith(("TableThrottles", "TableSystemErrors"))
    }


def test_every_log_group_has_a_retention_and_access_logs_are_json(template: dict[str, Any]) -> None:
    groups = _of_type(template, "AWS::Logs::LogGroup")
    assert sorted(groups) == ["AccessLogGroup", "FunctionLogGroup", "UpkeepLogGroup"]
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain"), name
    # every function writes to a log group of the template (else Lambda would create one, kept forever)
    for name, function in _of_type(template, "AWS::Serverless::Function").items():
        log_group = "/aws/lambda/" + function["Properties"]["FunctionName"]["Fn::Sub"]
        assert {"Fn::Sub": log_group} in [g["Properties"]["LogGroupName"] for g in groups.values()], name
    access = template["Resources"]["RestAPI"]["Properties"]["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["AccessLogGroup", "Arn"]}
    line = json.loads(access["Format"])  # one JSON object a request; the values are API Gateway's own
    assert set(line.values()) == {v for v in line.values() if re.fullmatch(r"\$context\.[a-zA-Z.]+", v)}
    assert {"$context.requestId", "$context.status", "$context.path", "$context.identity.sourceIp"} <= set(
        line.values()
    )
    assert not [v for v in line.values() if "userAgent" in v or "header" in v.lower()]  # caller-written: left out
    assert (
        template["Parameters"]["LogRetentionDays"]["Default"]
        in template["Parameters"]["LogRetentionDays"]["AllowedValues"]
    )


# --- AWS WAF ----------------------------------------------------------------------------------

# Public routes not under the web ACL's rate rules: cheap, answered from the function's memory.
# Answered from the function's memory, writing nothing: the stage throttle is their limit.
UNLIMITED = {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/console"), ("GET", "/console/{asset}")}
# Routes a device calls with a credential (a token or an EST enrolment credential): rate-limited as enrolment is.
DEVICE_FACING = {("POST", "/{tenant}/x509/sign")}
# Public routes of OCSP and EST (and sign): the web ACL covers them.
COMING = [
    ("POST", "/acme/ocsp", True),
    ("GET", "/acme/ocsp/MEowSDBGMEQwQjAHBgUrDgMCGgQU", False),
    ("GET", "/acme/ocsp/MEow+SDB/GMEQ=", False),
    ("POST", "/.well-known/est/acme/simpleenroll", True),
    ("GET", "/.well-known/est/acme/cacerts", True),
    ("POST", "/acme/x509/sign", True),
]


def _web_acl(template: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    rules = {r["Name"]: r for r in template["Resources"]["WebAcl"]["Properties"]["Rules"]}
    sets = {
        name: r["Properties"]["RegularExpressionList"]
        for name, r in _of_type(template, "AWS::WAFv2::RegexPatternSet").items()
    }
    return rules, sets


def _scope(rule: dict[str, Any], sets: dict[str, list[str]]) -> list[str]:
    """The regular expressions a rate rule's scope-down matches the (decoded, lower-cased) path with."""
    statement = rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["RegexPatternSetReferenceStatement"]
    assert [t["Type"] for t in statement["TextTransformations"]] == ["URL_DECODE", "LOWERCASE"]
    assert statement["FieldToMatch"] == {"UriPath": {}}
    return sets[statement["Arn"]["Fn::GetAtt"][0]]


def _matched(patterns: list[str], path: str) -> bool:
    from urllib.parse import unquote

    return any(re.search(p, unquote(path).lower()) for p in patterns)


def _concrete(route: str) -> str:
    values = {"tenant": "acme", "identity": "KZXW6YTBOI2DEMZQ", "ca_id": "0f" * 48, "cert_id": "1e" * 48}
    values |= {
        "token_id": "00000000000000aa",
        "cr_id": "2d" * 16,
        "name": "routers",
        "asset": "app.js",
        "profile": "routers",
        "request": "MEowSDBGMEQwQjAHBgUrDgMCGgQU",
    }
    values |= {"username": "estc_0123456789abcdef"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route)


def test_every_public_route_is_under_a_per_address_and_a_per_tenant_rate_rule(template: dict[str, Any]) -> None:
    """Every public route of the app (tests/conftest.py PUBLIC_ROUTES, where new public routes are added)
    is limited per client address, and, where its path is one per tenant, per tenant; admin routes are not."""
    from app import app
    from tests.conftest import PUBLIC_ROUTES

    rules, sets = _web_acl(template)
    rate = {n: r for n, r in rules.items() if "RateBasedStatement" in r["Statement"]}
    assert sorted(rate) == ["GatewayPerAddress", "GatewayPerTenant", "PublicPerAddress", "PublicPerTenant"]
    per_address = _scope(rate["PublicPerAddress"], sets) + _scope(rate["GatewayPerAddress"], sets)
    per_tenant = _scope(rate["PublicPerTenant"], sets) + _scope(rate["GatewayPerTenant"], sets)
    for name in ("PublicPerAddress", "GatewayPerAddress"):
        assert rate[name]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    for name in ("PublicPerTenant", "GatewayPerTenant"):
        statement = rate[name]["Statement"]["RateBasedStatement"]
        assert statement["AggregateKeyType"] == "CUSTOM_KEYS"
        (key,) = statement["CustomKeys"]
        assert [t["Type"] for t in key["UriPath"]["TextTransformations"]] == ["URL_DECODE", "LOWERCASE"]
    stage = CONFIG["stages"][STAGE]["api_gateway_stage"]
    routes = {(m.upper(), p) for p, methods in app.routes.items() for m in methods}
    assert PUBLIC_ROUTES <= routes
    for method, route in sorted(PUBLIC_ROUTES - UNLIMITED):
        path = _concrete(route)
        for seen in (path, f"/{stage}{path}", path.upper().replace("SEACAT", "seacat")):  # custom domain, execute-api
            assert _matched(per_address, seen), (method, route, seen)
        # one path per tenant (EST's: per tenant and profile), or a path per request (an identity, a CA id)
        one_per_tenant = "{" not in route.removeprefix("/.well-known/est").removeprefix("/{tenant}").replace(
            "/{profile}", ""
        )
        assert _matched(per_tenant, path) == one_per_tenant, (method, route)
    for _method, path, one_per_tenant in COMING:
        assert _matched(per_address, path) and _matched(per_tenant, path) == one_per_tenant, path
    for method, route in sorted(DEVICE_FACING):  # authenticated, but called by devices: limited like enrolment
        assert _matched(per_address, _concrete(route)) and _matched(per_tenant, _concrete(route)), (method, route)
    for method, route in sorted(routes - PUBLIC_ROUTES - DEVICE_FACING):  # admin routes: the stage throttle only
        assert not _matched(per_address + per_tenant, _concrete(route)), (method, route)
    # nginx_authenticate has its own rules: NGINX understands 2xx, 401 and 403 only, so WAF answers 403 there
    gateway = _scope(rate["GatewayPerAddress"], sets)
    assert gateway == _scope(rate["GatewayPerTenant"], sets)
    assert _matched(gateway, "/acme/seacat/nginx_authenticate") and not _matched(gateway, "/acme/seacat/enroll")
    for name, rule in rules.items():
        if "Gateway" in name:
            assert rule["Action"] == {"Block": {}}, name
        elif name in rate:
            assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429, name
    limits = {n: r["Statement"]["RateBasedStatement"]["Limit"] for n, r in rate.items()}
    assert all(limit["Ref"] in template["Parameters"] for limit in limits.values()), limits
    association = template["Resources"]["WebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


def test_the_web_acl_refuses_bodies_the_service_refuses_and_keeps_the_common_rules_that_fit(
    template: dict[str, Any],
) -> None:
    from chalicelib.seacat.codec import MAX_CR_SIZE
    from chalicelib.service.gateway import MAX_PEM

    rules, sets = _web_acl(template)
    for name, limit, pattern_of in (
        ("EnrolmentBodyTooLarge", MAX_CR_SIZE, "/acme/seacat/enroll"),
        ("GatewayBodyTooLarge", MAX_PEM, "/acme/seacat/nginx_authenticate"),
    ):
        path, size = rules[name]["Statement"]["AndStatement"]["Statements"]
        assert size["SizeConstraintStatement"]["Size"] == limit == 16384, name
        assert size["SizeConstraintStatement"]["ComparisonOperator"] == "GT"
        # API Gateway shows AWS WAF 16 KB of a body: a larger one is oversize, and MATCH refuses it
        assert size["SizeConstraintStatement"]["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
        regex = path.get("RegexMatchStatement", {}).get("RegexString")
        patterns = [regex] if regex else sets[path["RegexPatternSetReferenceStatement"]["Arn"]["Fn::GetAtt"][0]]
        assert _matched(patterns, pattern_of) and _matched(patterns, f"/api{pattern_of}"), name
    assert rules["EnrolmentBodyTooLarge"]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    assert rules["GatewayBodyTooLarge"]["Action"] == {"Block": {}}
    (common,) = [r for r in rules.values() if "ManagedRuleGroupStatement" in r["Statement"]]
    group = common["Statement"]["ManagedRuleGroupStatement"]
    assert (group["VendorName"], group["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    assert common["OverrideAction"] == {"None": {}}  # its own actions, but for these (docs/deploy.md, "AWS WAF")
    counted = {o["Name"] for o in group["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    assert counted == {
        "SizeRestrictions_BODY",
        "NoUserAgent_HEADER",
        "CrossSiteScripting_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY",
    }
    assert len(group["RuleActionOverrides"]) == len(counted)
    # rate and size rules come first: a flood is refused before the rule group's 700 WCU look at it
    assert common["Priority"] > max(r["Priority"] for r in rules.values() if r is not common)


def test_a_path_without_a_route_gets_a_constant_body(template: dict[str, Any]) -> None:
    """API Gateway's own answer to a path with no route quotes a non-SigV4 Authorization header (the
    caller's token); the stage answers it with one constant body instead, as make run does."""
    responses = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    ]
    (no_route,) = [r for r in responses if r["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN"]
    assert no_route["RestApiId"] == {"Ref": "RestAPI"} and no_route["StatusCode"] == "403"
    assert json.loads(no_route["ResponseTemplates"]["application/json"]) == {"message": "Missing Authentication Token"}
    assert no_route["ResponseParameters"]["gatewayresponse.header.Cache-Control"] == "'no-store'"
