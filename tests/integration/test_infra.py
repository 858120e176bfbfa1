"""infra/ against the code: tables vs the pynamodb models, config vs outputs, the role's statements on the stack.

The packaged template (chalice package + infra/) is checked in test_package.py; this file needs no
packaging: it reads infra/resources.yaml, and deploys it into moto like `make run` does.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

INFRA = ROOT / "infra"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Sub, !GetAtt, ...) as their long JSON forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


RESOURCES = load_template(INFRA / "resources.yaml")


def _by_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def _stage_value(value: Any, stage: str) -> Any:
    """Evaluate the Stage-only intrinsics used in names and outputs (!Sub "...${Stage}...", !Ref Stage)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        assert re.findall(r"\$\{([^}]+)\}", text) in ([], ["Stage"]), text
        return text.replace("${Stage}", stage)
    if value == {"Ref": "Stage"}:
        return stage
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return _stage_value(RESOURCES["Resources"][value["Ref"]]["Properties"]["AliasName"], stage)
    return value


# --- tables against the models -----------------------------------------------------------------


def _table_for(name: str) -> tuple[str, dict[str, Any]]:
    tables = {
        logical: r
        for logical, r in _by_type(RESOURCES, "AWS::DynamoDB::Table").items()
        if r["Properties"]["TableName"] == {"Fn::Sub": f"seacat-${{Stage}}-{name}"}
    }
    assert len(tables) == 1, (
        f"expected one table seacat-${{Stage}}-{name} in infra/resources.yaml, found {list(tables)}"
    )
    return next(iter(tables.items()))


def _keys(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["AttributeName"]: k["KeyType"] for k in schema}


def _projection(projection: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    return projection["ProjectionType"], tuple(sorted(projection.get("NonKeyAttributes", [])))


def _model_names() -> list[str]:
    from chalicelib.store.models import MODELS

    return list(MODELS)


@pytest.mark.parametrize("name", _model_names())
def test_table_matches_its_model(name: str) -> None:
    from chalicelib.store.models import MODELS

    model = MODELS[name]
    schema = model._get_schema()  # pynamodb's own CreateTable view of the model (pinned pynamodb 6.1)
    _, table = _table_for(name)
    props = table["Properties"]

    assert _keys(props["KeySchema"]) == _keys(schema["key_schema"])
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in schema["attribute_definitions"]
    }
    template_gsis = {
        g["IndexName"]: (_keys(g["KeySchema"]), _projection(g["Projection"]))
        for g in props.get("GlobalSecondaryIndexes", [])
    }
    model_gsis = {
        g["index_name"]: (_keys(g["key_schema"]), _projection(g["projection"]))
        for g in schema["global_secondary_indexes"]
    }
    assert template_gsis == model_gsis
    assert not props.get("LocalSecondaryIndexes") and not schema["local_secondary_indexes"]

    ttl = model._ttl_attribute()
    if ttl is None:
        assert "TimeToLiveSpecification" not in props
    else:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl.attr_name, "Enabled": True}


def test_every_table_is_a_model() -> None:
    names = {_table_for(n)[0] for n in _model_names()}
    assert set(_by_type(RESOURCES, "AWS::DynamoDB::Table")) == names


def test_tables_are_durable_and_on_demand() -> None:
    for logical, table in _by_type(RESOURCES, "AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical
        # protected, except while `make deploy` creates the stack (a failed create can then delete them)
        assert props["DeletionProtectionEnabled"] == {"Fn::If": ["TablesProtected", True, False]}, logical
        assert props["SSESpecification"]["SSEEnabled"] is True, logical
        # kept when the stack is deleted or the table replaced; deleted when the create that made it rolls back
        assert table["DeletionPolicy"] == "RetainExceptOnCreate" and table["UpdateReplacePolicy"] == "Retain", logical
    assert RESOURCES["Conditions"]["TablesProtected"] == {"Fn::Equals": [{"Ref": "TableDeletionProtection"}, "true"]}
    assert RESOURCES["Parameters"]["TableDeletionProtection"]["Default"] == "true"


# --- the KMS key --------------------------------------------------------------------------------

CRYPTO = re.compile(
    r"^kms:(\*|Encrypt|Decrypt|ReEncrypt.*|GenerateDataKey.*|Sign|Verify|GenerateMac|VerifyMac|DeriveSharedSecret)$",
    re.I,
)

# Every KMS action on a key, so that a wildcard is judged by what it expands to (the same list as the IAM
# service reference cfn-lint ships: test_kms_key_actions_are_all_of_them).
KMS_KEY_ACTIONS = (
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
    "Decrypt",
    "DeleteAlias",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReEncryptFrom",
    "ReEncryptTo",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "SynchronizeMultiRegionKey",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
)
# The actions that let their holder read a CA secret: Decrypt itself, or one step its holder takes alone
# to get Decrypt (a grant to itself, a key policy of its own, the data key re-encrypted under a key of its
# own, a replica key with a policy of its own).
DECRYPT_PATHS = ("kms:Decrypt", "kms:ReEncryptFrom", "kms:CreateGrant", "kms:PutKeyPolicy", "kms:ReplicateKey")

ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
SECRETS_OF_THE_STAGE = {
    "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:seacat/${Stage}/*"
}
VIA_SECRETS_MANAGER = {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
# The only condition under which the service role may decrypt (key policy) ...
THROUGH_SECRETS_MANAGER = {
    "StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER, "kms:CallerAccount": {"Ref": "AWS::AccountId"}},
    "StringLike": {"kms:EncryptionContext:SecretARN": SECRETS_OF_THE_STAGE},
}
# ... and its copy in the role's own policy (kms:CallerAccount is implied there).
THROUGH_SECRETS_MANAGER_IAM = {
    "StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER},
    "StringLike": {"kms:EncryptionContext:SecretARN": SECRETS_OF_THE_STAGE},
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_kms_key_actions_are_all_of_them() -> None:
    """A new KMS action (a cfn-lint upgrade brings it) must be judged here: may it lead to Decrypt?"""
    from importlib.resources import files

    import cfnlint.data.AdditionalSpecs

    reference = json.loads((files(cfnlint.data.AdditionalSpecs) / "Policies.json").read_text())["kms"]["Actions"]
    on_a_key = {name for name, action in reference.items() if "key" in action.get("Resources", [])}
    assert {a.lower() for a in KMS_KEY_ACTIONS} == on_a_key


def _granted(statement: dict[str, Any]) -> set[str]:
    """The KMS key actions an Allow statement grants, its wildcards (and NotAction) expanded."""
    every = {f"kms:{a}" for a in KMS_KEY_ACTIONS}
    if "NotAction" in statement:
        excluded = _listed(statement["NotAction"])
        return {a for a in every if not any(fnmatch.fnmatchcase(a.lower(), x.lower()) for x in excluded)}
    patterns = _listed(statement["Action"])
    return {a for a in every if any(fnmatch.fnmatchcase(a.lower(), p.lower()) for p in patterns)}


def _principal_name(principal: Any) -> str:
    if principal == ACCOUNT_ROOT:
        return "the account (IAM principals its IAM policies allow)"
    if principal == {"Fn::GetAtt": ["ServiceRole", "Arn"]}:
        return "ServiceRole"
    return json.dumps(principal, sort_keys=True)  # anything else, "*" included, is named as it is written


def _condition_name(condition: Any) -> str:
    if not condition:
        return "unconditionally"
    if condition == THROUGH_SECRETS_MANAGER:
        return "through Secrets Manager in the stack's region, for secrets under seacat/<stage>/"
    return json.dumps(condition, sort_keys=True)


def decrypt_paths(template: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(who, action, when) for every way the template's CA-key KMS key lets a principal read a CA secret.

    The key policy decides: a principal it names may use what it is given there; the account root stands
    for every IAM principal of the account whose IAM policies allow the action, and for nobody else
    (an IAM policy cannot give an action the key policy does not give the account root). IAM policies in
    the template are counted only where the key policy lets the account delegate the action to them."""
    resources = template["Resources"]
    keys = [n for n, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    assert keys == ["CaKey"], keys
    assert not [n for n, r in resources.items() if r["Type"] in ("AWS::KMS::Grant", "AWS::KMS::ReplicaKey")]
    key = resources["CaKey"]["Properties"]
    assert not key.get("MultiRegion") and key.get("Origin", "AWS_KMS") == "AWS_KMS"
    paths: set[tuple[str, str, str]] = set()
    delegated: set[str] = set()
    for statement in key["KeyPolicy"]["Statement"]:
        assert statement["Effect"] in ("Allow", "Deny"), statement
        if statement["Effect"] != "Allow":
            continue
        assert "NotPrincipal" not in statement, statement
        assert _listed(statement["Resource"]) == ["*"], statement
        principals = statement["Principal"]
        principals = (
            _listed(principals["AWS"]) if isinstance(principals, dict) and set(principals) == {"AWS"} else [principals]
        )
        for action in sorted(_granted(statement) & set(DECRYPT_PATHS)):
            for principal in principals:
                paths.add((_principal_name(principal), action, _condition_name(statement.get("Condition"))))
                if principal == ACCOUNT_ROOT and not statement.get("Condition"):
                    delegated.add(action)
    for resource in resources.values():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            continue
        props = resource["Properties"]
        roles = [
            r["Ref"] if isinstance(r, dict) and set(r) == {"Ref"} else json.dumps(r) for r in props.get("Roles", [])
        ]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            resource_arns = _listed(statement.get("Resource", []))
            if not any(r in ("*", {"Fn::GetAtt": ["CaKey", "Arn"]}) or "kms" in json.dumps(r) for r in resource_arns):
                continue
            for action in sorted(_granted(statement) & delegated):
                for role in roles or ["(a policy attached to no role of the template)"]:
                    paths.add((role, action, _condition_name(statement.get("Condition"))))
    return paths


# Exactly who can read a CA secret, and how: the service role through Secrets Manager, and the account's
# IAM principals allowed kms:PutKeyPolicy (the deliberate administrator path: infra/resources.yaml).
EXPECTED_DECRYPT_PATHS = {
    ("ServiceRole", "kms:Decrypt", "through Secrets Manager in the stack's region, for secrets under seacat/<stage>/"),
    ("the account (IAM principals its IAM policies allow)", "kms:PutKeyPolicy", "unconditionally"),
}


def test_only_the_service_role_through_secrets_manager_and_the_key_policy_administrators_can_read_ca_keys() -> None:
    assert decrypt_paths(RESOURCES) == EXPECTED_DECRYPT_PATHS


def test_decrypt_paths_sees_wildcards_grants_and_policy_changes() -> None:
    """The check above is only as good as its reading of a statement: it must catch what the key policy
    once had (kms:Create* and kms:Put* for the account, so CreateGrant and PutKeyPolicy) and kms:*."""
    import copy

    for actions, expected in (
        (["kms:Create*", "kms:Put*", "kms:Describe*"], {"kms:CreateGrant", "kms:PutKeyPolicy"}),
        (["kms:*"], set(DECRYPT_PATHS)),
        (["kms:ReEncrypt*"], {"kms:ReEncryptFrom"}),
        (["kms:describekey", "kms:TagResource"], set()),
    ):
        template = copy.deepcopy(RESOURCES)
        statements = template["Resources"]["CaKey"]["Properties"]["KeyPolicy"]["Statement"]
        statements.append({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": actions, "Resource": "*"})
        assert {action for who, action, _ in decrypt_paths(template) if who == '"*"'} == expected, actions
    # an IAM policy in the template counts where the key policy delegates the action to the account
    template = copy.deepcopy(RESOURCES)
    template["Resources"]["ServicePolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "kms:*", "Resource": {"Fn::GetAtt": ["CaKey", "Arn"]}}
    )
    assert decrypt_paths(template) - EXPECTED_DECRYPT_PATHS == {("ServiceRole", "kms:PutKeyPolicy", "unconditionally")}


def test_kms_key_rotates_and_only_the_service_role_uses_it_through_secrets_manager() -> None:
    key = RESOURCES["Resources"]["CaKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "RetainExceptOnCreate" and key["UpdateReplacePolicy"] == "Retain"
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert set(statements) == {"AccountAdministration", "AccountKeyPolicyChange", "ServiceRoleThroughSecretsManager"}
    users = [s for s in statements.values() if any(CRYPTO.match(a) for a in _granted(s))]
    # the account administers the key - no wildcard, nothing cryptographic, no grants - and may change the policy
    admin = statements["AccountAdministration"]
    assert admin["Principal"] == {"AWS": ACCOUNT_ROOT} and "Condition" not in admin
    assert not any("*" in a for a in admin["Action"]), admin["Action"]
    assert set(admin["Action"]) == _granted(admin)  # every name is a real KMS action
    assert {"kms:DescribeKey", "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:TagResource"} <= set(
        admin["Action"]
    )
    assert not set(admin["Action"]) & set(DECRYPT_PATHS)
    change = statements["AccountKeyPolicyChange"]
    assert change["Principal"] == {"AWS": ACCOUNT_ROOT} and _listed(change["Action"]) == ["kms:PutKeyPolicy"]
    # one user: the service role, through Secrets Manager, for this stage's secrets
    assert users == [statements["ServiceRoleThroughSecretsManager"]]
    (use,) = users
    assert use["Principal"] == {"AWS": {"Fn::GetAtt": ["ServiceRole", "Arn"]}}
    assert sorted(use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert use["Condition"] == THROUGH_SECRETS_MANAGER
    # the role's own policy repeats exactly that grant (the key policy is what KMS consults)
    (iam,) = [
        s
        for s in RESOURCES["Resources"]["ServicePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("kms:") for a in _listed(s["Action"]))
    ]
    assert sorted(iam["Action"]) == sorted(use["Action"]) and iam["Resource"] == {"Fn::GetAtt": ["CaKey", "Arn"]}
    assert iam["Condition"] == THROUGH_SECRETS_MANAGER_IAM
    alias = RESOURCES["Resources"]["CaKeyAlias"]["Properties"]
    assert alias == {"AliasName": {"Fn::Sub": "alias/seacat-${Stage}"}, "TargetKeyId": {"Ref": "CaKey"}}


# --- the Chalice stages against the outputs ---------------------------------------------------


@pytest.mark.parametrize("stage", sorted(CONFIG["stages"]))
def test_stage_configuration_matches_the_outputs(stage: str) -> None:
    env = {**CONFIG.get("environment_variables", {}), **CONFIG["stages"][stage].get("environment_variables", {})}
    outputs = {name: _stage_value(o["Value"], stage) for name, o in RESOURCES["Outputs"].items()}
    assert env["SEACAT_STAGE"] == stage
    assert env["SEACAT_TABLE_PREFIX"] == outputs["TablePrefix"]
    assert env["SEACAT_SECRET_PREFIX"] == outputs["SecretPrefix"]
    assert env["SEACAT_KMS_KEY_ID"] == outputs["KmsKeyId"]
    assert re.fullmatch(RESOURCES["Parameters"]["Stage"]["AllowedPattern"], stage)


def test_aws_stages_use_the_role_from_infra_and_no_policy_file() -> None:
    assert CONFIG["autogen_policy"] is False
    aws_stages = [s for s in CONFIG["stages"] if s not in ("local", "test")]
    assert aws_stages
    for stage in aws_stages:
        config = CONFIG["stages"][stage]
        assert config["manage_iam_role"] is False, stage
        assert "iam_policy_file" not in config, stage
    assert not list((ROOT / ".chalice").glob("policy-*.json"))


# --- merge_templates.py ------------------------------------------------------------------------


def test_merge_templates_refuses_to_override_and_pins_the_stage(tmp_path: Path) -> None:
    script = INFRA / "merge_templates.py"
    out = tmp_path / "merge.yaml"
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            "--stage",
            "prod",
            "--out",
            str(out),
            str(INFRA / "resources.yaml"),
            str(INFRA / "api.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    merged = yaml.safe_load(out.read_text())
    assert (
        merged["Parameters"]["Stage"]["AllowedValues"] == ["prod"]
        and merged["Parameters"]["Stage"]["Default"] == "prod"
    )
    assert set(RESOURCES["Resources"]) < set(merged["Resources"])
    assert merged["Resources"]["ServiceRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"
    ] == {"Service": "lambda.amazonaws.com"}

    clash = tmp_path / "clash.yaml"
    clash.write_text("Resources:\n  CaKey:\n    Properties: {EnableKeyRotation: false}\n")
    run = subprocess.run(
        [sys.executable, str(script), "--stage", "dev", "--out", str(out), str(INFRA / "resources.yaml"), str(clash)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode != 0 and "Resources.CaKey" in run.stderr


# --- deployed into moto (as make run and the tests do) -----------------------------------------


ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's default account; the region tests/conftest.py sets


def _role_policy() -> list[dict[str, Any]]:
    import boto3

    iam = boto3.client("iam")
    (role,) = [r for r in iam.list_roles()["Roles"] if "ServiceRole" in r["RoleName"]]
    names = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    assert names == ["seacat-pki-test"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=names[0])["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    return list(document["Statement"])


def test_deployed_tables_match_the_models(aws: None) -> None:
    import boto3

    from chalicelib.store.models import MODELS

    ddb = boto3.client("dynamodb")
    for name, model in MODELS.items():
        table = ddb.describe_table(TableName=f"seacat-test-{name}")["Table"]
        schema = model._get_schema()
        assert _keys(table["KeySchema"]) == _keys(schema["key_schema"]), name
        assert {g["IndexName"]: _keys(g["KeySchema"]) for g in table.get("GlobalSecondaryIndexes", [])} == {
            g["index_name"]: _keys(g["key_schema"]) for g in schema["global_secondary_indexes"]
        }, name
        # (moto's CloudFormation ignores TimeToLiveSpecification; test_table_matches_its_model checks it.)


def test_deployed_role_policy_names_only_this_stages_resources(aws: None) -> None:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    statements = {s["Sid"]: s for s in _role_policy()}
    table = arn.format("dynamodb", "table/seacat-test-{}")
    assert sorted(
        r for sid in ("ReadWrite", "Requests", "Audit", "TenantList") for r in _listed(statements[sid]["Resource"])
    ) == sorted(table.format(n) for n in [*_model_names(), "tenants"])
    assert sorted(statements["Indexes"]["Resource"]) == sorted(
        table.format(f"{t}/index/{i}")
        for t, i in (
            ("certificates", "identity-index"),
            ("certificates", "revoked-index"),
            ("certificates", "ca-index"),
        )
        + (("requests", "pending-index"), ("tokens", "credential-index"))
    )
    assert statements["CaKeySecrets"]["Resource"] == arn.format("secretsmanager", "secret:seacat/test/*")
    rotation = statements["WebhookSecretRotation"]
    assert rotation["Action"] == "secretsmanager:PutSecretValue"
    assert rotation["Resource"] == arn.format("secretsmanager", "secret:seacat/test/*/webhook-secret-??????")
    for name, allowed in (("acme/webhook-secret-AbCdEf", True), ("acme/ca-key-AbCdEf", False), ("acme/ca-key", False)):
        resource = arn.format("secretsmanager", f"secret:seacat/test/{name}")
        assert _allowed([rotation], "secretsmanager:PutSecretValue", resource) is allowed, name
    ocsp = statements["OcspSignerRotation"]
    assert ocsp["Action"] == "secretsmanager:PutSecretValue"
    for name, allowed in (
        ("acme/ocsp-signer-0123456789abcdef-AbCdEf", True),
        ("acme/ocsp-signer-AbCdEf", False),
        ("acme/ca-key-0123456789abcdef-AbCdEf", False),
        ("acme/ca-key-AbCdEf", False),
    ):
        resource = arn.format("secretsmanager", f"secret:seacat/test/{name}")
        assert _allowed([ocsp], "secretsmanager:PutSecretValue", resource) is allowed, name
    # CA key secrets, and nothing else, may be scheduled for deletion (a retired or revoked CA's key)
    deletion = statements["CaKeyDeletion"]
    assert deletion["Action"] == "secretsmanager:DeleteSecret"
    assert sorted(deletion["Resource"]) == sorted(
        arn.format("secretsmanager", f"secret:seacat/test/*/{name}")
        for name in ("ca-key-??????", "ca-key-????????????????-??????")
    )
    for name, allowed in (
        ("acme/ca-key-AbCdEf", True),  # a tenant's first key
        ("acme/ca-key-0123456789abcdef-AbCdEf", True),  # a key made by a rotation
        ("acme/webhook-secret-AbCdEf", False),
        ("acme/ca-key-0123456789abcdef-extra-AbCdEf", False),
        ("acme/ca-keyring-AbCdEf", False),
        ("ca-key/webhook-secret-AbCdEf", False),  # a tenant named ca-key
    ):
        resource = arn.format("secretsmanager", f"secret:seacat/test/{name}")
        assert _allowed(_role_policy(), "secretsmanager:DeleteSecret", resource) is allowed, name
    other_stage = arn.format("secretsmanager", "secret:seacat/prod/acme/ca-key-AbCdEf")
    assert not _allowed(_role_policy(), "secretsmanager:DeleteSecret", other_stage)
    assert [sid for sid, s in statements.items() if "DeleteSecret" in json.dumps(s["Action"])] == ["CaKeyDeletion"]
    assert statements["CaKeyThroughSecretsManager"]["Resource"].startswith(arn.format("kms", "key/"))
    assert statements["CaKeyThroughSecretsManager"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:SecretARN": arn.format("secretsmanager", "secret:seacat/test/*")},
    }
    assert statements["FunctionLogs"]["Resource"] == [
        arn.format("logs", f"log-group:/aws/lambda/seacat-pki-test{suffix}:*") for suffix in ("", "-upkeep")
    ]


# --- matching a call against the role's statements -------------------------------------------


def _allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    for s in statements:
        if s["Effect"] != "Allow" or "Condition" in s:  # conditional grants (KMS via Secrets Manager) don't count
            continue
        if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(s["Action"])) and any(
            fnmatch.fnmatchcase(resource, r) for r in _listed(s["Resource"])
        ):
            return True
    return False
