"""The library internals this project reaches into, pinned: an upgrade that moves one fails here,
by name, instead of somewhere far away (a slow emulator, a second botocore session, a lost rollback).

- scripts/emulator.py patches moto: ``DynamoDBBackend.transact_write_items`` (item-level rollback
  instead of deep-copying every table a transaction touches), the ``copy`` module that
  ``moto.dynamodb.models`` uses for that copy, ``DynamoType`` and ``Table`` to name items, and
  ``moto_api._internal.mock_random`` (seeded so a replayed journal draws the same ids). No upstream
  issue asks for item-level rollback; moto's own transaction code deep-copies the tables it touches.
- chalicelib/store/common.py gives pynamodb's per-model connections the process's botocore session
  and one shared client through ``Model._get_connection().connection`` and ``Connection._local`` /
  ``Connection._client``; chalicelib/store/models.py drops a model's cached ``_connection`` on rebind.
  pynamodb offers no public way to share a session or client: pynamodb/PynamoDB issues #876 (a
  session and client per model) and #1245 (a Meta option to share one connection) ask for it.
- chalicelib/store/dynamodb_transfer.py writes an imported item exactly as its record has it (version
  and times kept; ``Model.save()`` would move the version) with a PutItem conditioned on its key being
  free: ``Model.serialize()``, ``Model._hash_key_attribute()`` / ``_range_key_attribute()`` (their
  ``attr_name``, ``attr_type`` and ``does_not_exist()``) and the table connection's
  ``put_item(hash_key, range_key=, attributes=, condition=)``.
"""

from __future__ import annotations

import inspect
import threading


def test_moto_internals_the_emulator_patches() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.moto_api._internal import mock_random

    backend = models.DynamoDBBackend
    assert callable(backend.transact_write_items)
    assert list(inspect.signature(backend.transact_write_items).parameters)[:2] == ["self", "transact_items"]
    # moto copies tables through the module-level ``copy`` name: the emulator swaps it
    assert models.copy.deepcopy is not None
    # a real table of moto's: the attributes the rollback reads and writes
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("dynamodb", region_name="eu-west-1").create_table(
            TableName="seam",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table = models.dynamodb_backends["123456789012"]["eu-west-1"].tables["seam"]
        assert isinstance(table, Table)
        assert table.hash_key_attr == "pk" and table.range_key_attr is None
        assert isinstance(table.items, dict) and callable(table.get_item)
    assert callable(DynamoType)
    assert callable(mock_random.seed)


def test_the_emulator_patch_installs_and_rolls_back_item_by_item() -> None:
    from moto.dynamodb import models

    from scripts.emulator import item_level_rollback

    item_level_rollback()
    assert getattr(models.DynamoDBBackend.transact_write_items, "item_level_rollback", False)
    item_level_rollback()  # idempotent


def test_pynamodb_internals_the_store_shares_a_session_through() -> None:
    from pynamodb.connection import Connection
    from pynamodb.models import Model

    from chalicelib.store import models

    assert callable(Model._get_connection)
    conn = Connection(region="eu-west-1", host="http://127.0.0.1:9")
    assert isinstance(conn._local, threading.local)
    assert hasattr(conn, "_client") and conn._client is None
    for model in models.MODELS.values():
        assert hasattr(model, "_connection")
        table_conn = model._get_connection()
        assert isinstance(table_conn.connection, Connection)
    models.unbind()


def test_pynamodb_internals_the_transfer_puts_items_through() -> None:
    import boto3
    from moto import mock_aws
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
    from pynamodb.connection.table import TableConnection
    from pynamodb.expressions.condition import Condition
    from pynamodb.models import Model

    from chalicelib.store.dynamodb_transfer import _put_new

    parameters = inspect.signature(TableConnection.put_item).parameters
    assert list(parameters)[:3] == ["self", "hash_key", "range_key"]
    assert {"attributes", "condition"} <= set(parameters)

    class Seam(Model):
        class Meta:
            table_name = "seam-transfer"
            region = "eu-west-1"

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        value = NumberAttribute()
        version = VersionAttribute()

    item = Seam("a", "b", value=1, version=5)
    assert item.serialize() == {"pk": {"S": "a"}, "sk": {"S": "b"}, "value": {"N": "1"}, "version": {"N": "5"}}
    hash_attr, range_attr = item._hash_key_attribute(), item._range_key_attribute()
    assert (hash_attr.attr_name, hash_attr.attr_type, range_attr.attr_name) == ("pk", "S", "sk")
    assert isinstance(hash_attr.does_not_exist(), Condition)
    with mock_aws():
        boto3.client("dynamodb", region_name="eu-west-1").create_table(
            TableName="seam-transfer",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        assert isinstance(Seam._get_connection(), TableConnection)
        assert _put_new(item) is True
        assert _put_new(Seam("a", "b", value=2, version=9)) is False  # the key is taken: nothing written
        stored = Seam.get("a", "b", consistent_read=True)
        assert (stored.value, stored.version) == (1, 5)  # as given: no version moved
