"""The emulator's item-level rollback of TransactWriteItems (scripts/emulator.py) keeps moto's
semantics: a cancelled transaction leaves every item as it was, a committed one applies all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

TABLE = "rollback-test"


@pytest.fixture
def ddb() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    from scripts.emulator import item_level_rollback

    item_level_rollback()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(3):
            client.put_item(TableName=TABLE, Item=key(f"item-{n}") | {"value": {"N": str(n)}, "tags": {"SS": ["a"]}})
        yield client


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": "tenant#"}, "sk": {"S": name}}


def everything(client: Any) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=TABLE, ConsistentRead=True)["Items"], key=lambda i: i["sk"]["S"])


def test_a_cancelled_transaction_leaves_every_item_as_it_was(ddb: Any) -> None:
    before = everything(ddb)
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key("new") | {"value": {"N": "9"}}}},
                {"Put": {"TableName": TABLE, "Item": key("item-0") | {"value": {"N": "100"}}}},
                {
                    "Update": {  # mutates the stored item in place, in moto
                        "TableName": TABLE,
                        "Key": key("item-1"),
                        "UpdateExpression": "SET #v = #v + :one ADD tags :t",
                        "ExpressionAttributeNames": {"#v": "value"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":t": {"SS": ["b"]}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": key("item-2")}},
                {
                    "ConditionCheck": {  # fails: the transaction is cancelled after the writes above ran
                        "TableName": TABLE,
                        "Key": key("missing"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert everything(ddb) == before


def test_a_transaction_naming_one_item_twice_is_refused_whole(ddb: Any) -> None:
    before = everything(ddb)
    with pytest.raises(ddb.exceptions.ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key("item-0") | {"value": {"N": "7"}}}},
                {"Delete": {"TableName": TABLE, "Key": key("item-0")}},
            ]
        )
    assert everything(ddb) == before


def test_a_committed_transaction_applies_every_write(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": key("new") | {"value": {"N": "9"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("item-1"),
                    "UpdateExpression": "SET #v = :v",
                    "ExpressionAttributeNames": {"#v": "value"},
                    "ExpressionAttributeValues": {":v": {"N": "42"}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": key("item-2")}},
        ]
    )
    values = {i["sk"]["S"]: i["value"]["N"] for i in everything(ddb)}
    assert values == {"item-0": "0", "item-1": "42", "new": "9"}


def test_the_tables_are_no_longer_copied_per_transaction(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def watching(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", watching)
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": key("x")}}])
    assert copied == []
