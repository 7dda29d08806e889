"""The published contract files are well formed and say what the design says.

Pure tests: no network, no Docker. Covers docker-compose.yml, Dockerfile, the JSON Schemas in
schemas/ and docs/asyncapi.yaml.
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from streams.contract import InvalidEvent, decode_purchase

ROOT = Path(__file__).resolve().parents[2]
try:
    from tests.schema_helpers import SCHEMA_DIR, load_schema, validate, validate_json, validator_for
except ModuleNotFoundError:  # repo root not on sys.path (plain `pytest` without pythonpath = ["."])
    sys.path.insert(0, str(ROOT))
    from tests.schema_helpers import SCHEMA_DIR, load_schema, validate, validate_json, validator_for

SCHEMA_NAMES = [
    "purchase",
    "purchase-dlq",
    "segment-change",
    "customer-segment",
    "clock-tick",
    "http-customer",
    "http-error",
    "http-segments",
    "http-campaigns",
    "http-together",
    "http-customer-bundles",
    "http-segment-bundles",
    "campaign-event",
    "alert",
    "review",
    "http-reviews",
    "http-cohorts",
    "http-best-time",
    "http-best-time-segments",
    "product",
    "customer-traits",
    "segment-move",
]


def test_every_schema_file_is_checked() -> None:
    on_disk = {p.name.removesuffix(".schema.json") for p in (ROOT / "schemas").glob("*.schema.json")}
    assert on_disk == set(SCHEMA_NAMES)


def _yaml(relpath: str) -> Any:
    return yaml.safe_load((ROOT / relpath).read_text(encoding="utf-8"))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" list form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


# --------------------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _yaml("docker-compose.yml")
    assert isinstance(data, dict)
    return data


def test_compose_has_the_stack(compose: dict[str, Any]) -> None:
    assert {"kafka", "redis", "worker"} <= set(compose["services"])


def test_compose_every_service_has_an_image_or_build(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("image") or service.get("build"), f"{name}: neither image nor build"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert compose["services"]["redis"]["image"].startswith("redis:7")
    assert compose["services"]["worker"]["build"]


def test_compose_worker_waits_for_healthy_kafka_and_redis(compose: dict[str, Any]) -> None:
    depends = compose["services"]["worker"]["depends_on"]
    assert {"kafka", "redis"} <= set(depends)
    for name in ("kafka", "redis"):
        assert depends[name]["condition"] == "service_healthy"
        assert compose["services"][name]["healthcheck"]["test"], f"{name} has no healthcheck"


def test_compose_worker_configuration(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    env = _env(worker)
    assert env["SEGSTREAM_KAFKA_URL"] == "kafka://kafka:9092"
    assert env["SEGSTREAM_REDIS_URL"] == "redis://redis:6379/0"
    assert env["SEGSTREAM_WEB_PORT"] == "6066"
    assert _command(worker) == ["worker"]  # the image's ENTRYPOINT is `segstream`
    assert any(str(port).endswith("6066:6066") for port in worker["ports"])


def test_compose_redis_persists_with_aof(compose: dict[str, Any]) -> None:
    command = _command(compose["services"]["redis"])
    assert "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(str(volume).endswith(":/data") for volume in compose["services"]["redis"]["volumes"])


def test_compose_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    # exactly-once needs transactions, whose state topic must fit on one broker
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(env["CLUSTER_ID"]) == 22  # base64 of a 16-byte UUID, as kafka-storage format wants


def test_compose_volumes_are_named_and_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            assert not source.startswith((".", "/", "~")), f"{name}: bind mount {volume}"
            assert source in declared, f"{name}: volume {source} not declared at top level"


def test_compose_has_no_secrets(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key in _env(service):
            assert not any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")), f"{name}: {key}"


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_segstream_as_non_root() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    assert lines[0].startswith("#") or lines[0].startswith("FROM")
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install --no-cache-dir") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["segstream"]' in lines
    assert 'CMD ["worker"]' in lines
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "segstream" in scripts  # the console script the ENTRYPOINT runs


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".cache", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"} <= ignored


# --------------------------------------------------------------------------- JSON Schemas


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    for example in schema.get("examples", []):
        validate(name, example)


def test_helper_validator_asserts_formats() -> None:
    assert validator_for("purchase").format_checker is not None


def test_date_time_profile_is_the_same_in_both_schemas() -> None:
    purchase = load_schema("purchase")["$defs"]["rfc3339DateTime"]
    dlq = load_schema("purchase-dlq")["$defs"]["rfc3339DateTime"]
    assert purchase["pattern"] == dlq["pattern"]
    assert purchase["format"] == dlq["format"] == "date-time"


MINIMAL = {
    "event_id": "e-1",
    "customer_id": "00042",
    "occurred_at": "2026-11-26T12:00:00+01:00",
    "amount": 10,
}
FULL = {
    "event_id": "shop1-ord-9001",
    "customer_id": "00042",
    "occurred_at": "2026-11-26T12:00:00.123456-05:00",
    "amount": 42.5,
    "type": "purchase",
    "order_id": "ord-9001",
    "currency": "EUR",
    "channel": "web",
    "region": "north",
    "items": [
        {"sku": "A-1", "category": "books", "quantity": 2, "unit_price": 12.5},
        {"sku": "B-7", "quantity": 0.5, "unit_price": 35},
    ],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    instance = copy.deepcopy(base)
    instance.update(changes)
    return instance


def _without(base: dict[str, Any], field: str) -> dict[str, Any]:
    instance = copy.deepcopy(base)
    del instance[field]
    return instance


VALID_PURCHASES = {
    "minimal": MINIMAL,
    "full with items": FULL,
    "refund negative": _with(MINIMAL, type="refund", amount=-12.5),
    "refund zero": _with(MINIMAL, type="refund", amount=0),
    "purchase zero": _with(MINIMAL, amount=0),
    "epoch ms occurred_at": _with(MINIMAL, occurred_at=1795046400000),
    "epoch ms at the window's floor (1990-01-01)": _with(MINIMAL, occurred_at=631152000000),
    "Z offset": _with(MINIMAL, occurred_at="2026-11-26T11:00:00Z"),
    "fraction and negative offset": _with(MINIMAL, occurred_at="1997-01-01T00:00:00.5-08:00"),
    "cents that are not binary floats": _with(MINIMAL, amount=19.99),
    "more cents": _with(MINIMAL, amount=1234.56),
    "seven cents": _with(MINIMAL, amount=0.07),
    "refund of cents": _with(MINIMAL, type="refund", amount=-4.35),
    "unknown field ignored": _with(MINIMAL, coupon="XMAS", schema_version=7),
    "unicode ids": _with(MINIMAL, customer_id="kunde-ä", event_id="é" * 200),
}

INVALID_PURCHASES = {
    "missing event_id": _without(MINIMAL, "event_id"),
    "missing customer_id": _without(MINIMAL, "customer_id"),
    "missing occurred_at": _without(MINIMAL, "occurred_at"),
    "missing amount": _without(MINIMAL, "amount"),
    "empty event_id": _with(MINIMAL, event_id=""),
    "empty customer_id": _with(MINIMAL, customer_id=""),
    "customer_id too long": _with(MINIMAL, customer_id="c" * 201),
    "customer_id not a string": _with(MINIMAL, customer_id=42),
    "negative purchase amount": _with(MINIMAL, amount=-1),
    "negative amount, type defaulted": _with(MINIMAL, amount=-0.01),
    "positive refund amount": _with(MINIMAL, type="refund", amount=5),
    "3 decimal places": _with(MINIMAL, amount=10.005),
    "sub-cent refund": _with(MINIMAL, type="refund", amount=-0.001),
    "amount as string": _with(MINIMAL, amount="10.00"),
    "amount as bool": _with(MINIMAL, amount=True),
    "amount null": _with(MINIMAL, amount=None),
    "type gift": _with(MINIMAL, type="gift"),
    "type null": _with(MINIMAL, type=None),
    "occurred_at without offset": _with(MINIMAL, occurred_at="2024-01-01T10:00:00"),
    "occurred_at as float": _with(MINIMAL, occurred_at=1795046400000.5),
    "occurred_at negative epoch": _with(MINIMAL, occurred_at=-1),
    "occurred_at epoch past year 9999": _with(MINIMAL, occurred_at=253402300800000),
    "occurred_at as bool": _with(MINIMAL, occurred_at=True),
    "occurred_at date only": _with(MINIMAL, occurred_at="2024-01-01"),
    "occurred_at without seconds": _with(MINIMAL, occurred_at="2024-01-01T10:00Z"),
    "occurred_at offset without colon": _with(MINIMAL, occurred_at="2024-01-01T10:00:00+0100"),
    "occurred_at space separator": _with(MINIMAL, occurred_at="2024-01-01 10:00:00Z"),
    "occurred_at lowercase z": _with(MINIMAL, occurred_at="2024-01-01T10:00:00z"),
    "occurred_at month 13": _with(MINIMAL, occurred_at="2024-13-01T10:00:00Z"),
    "occurred_at leap second": _with(MINIMAL, occurred_at="2016-12-31T23:59:60Z"),
    "occurred_at year 0": _with(MINIMAL, occurred_at="0000-01-01T00:00:00Z"),
    "occurred_at trailing newline": _with(MINIMAL, occurred_at="2024-01-01T10:00:00Z\n"),
    "occurred_at epoch ms as string": _with(MINIMAL, occurred_at="1795046400000"),
    "currency lowercase": _with(MINIMAL, currency="eur"),
    "currency too long": _with(MINIMAL, currency="EURO"),
    "currency trailing newline": _with(MINIMAL, currency="EUR\n"),
    "order_id null": _with(MINIMAL, order_id=None),
    "items not a list": _with(MINIMAL, items={"sku": "A-1", "quantity": 1, "unit_price": 1}),
    "item without sku": _with(MINIMAL, items=[{"quantity": 1, "unit_price": 1}]),
    "item without quantity": _with(MINIMAL, items=[{"sku": "A-1", "unit_price": 1}]),
    "item without unit_price": _with(MINIMAL, items=[{"sku": "A-1", "quantity": 1}]),
    "item zero quantity": _with(MINIMAL, items=[{"sku": "A-1", "quantity": 0, "unit_price": 1}]),
    "item negative unit_price": _with(MINIMAL, items=[{"sku": "A-1", "quantity": 1, "unit_price": -1}]),
    "NaN amount": _with(MINIMAL, amount=float("nan")),
    "infinite quantity": _with(MINIMAL, items=[{"sku": "A-1", "quantity": float("inf"), "unit_price": 1}]),
    "not an object": [MINIMAL],
}


@pytest.mark.parametrize("instance", VALID_PURCHASES.values(), ids=VALID_PURCHASES.keys())
def test_valid_purchases_are_accepted(instance: dict[str, Any]) -> None:
    """By the schema and, in agreement, by the worker's decoder."""
    validate("purchase", instance)
    decode_purchase(json.dumps(instance).encode())


OUTSIDE_THE_WINDOW = {  # the schema checks shape; the accepted window depends on settings and receipt time
    "epoch zero": _with(MINIMAL, occurred_at=0),
    "epoch seconds": _with(MINIMAL, occurred_at=1795046400),
    "year 2099": _with(MINIMAL, occurred_at="2099-01-01T00:00:00Z"),
    "epoch ms in 9999": _with(MINIMAL, occurred_at=253402300799999),
}


@pytest.mark.parametrize("instance", OUTSIDE_THE_WINDOW.values(), ids=OUTSIDE_THE_WINDOW.keys())
def test_events_outside_the_window_have_a_valid_shape_but_are_refused(instance: dict[str, Any]) -> None:
    validate("purchase", instance)
    with pytest.raises(InvalidEvent, match=r"^occurred_at: "):
        decode_purchase(json.dumps(instance).encode())


@pytest.mark.parametrize("instance", INVALID_PURCHASES.values(), ids=INVALID_PURCHASES.keys())
def test_invalid_purchases_are_rejected(instance: Any) -> None:
    """By the schema and, in agreement, by the worker's decoder."""
    with pytest.raises(jsonschema.ValidationError):
        validate("purchase", instance)
    with pytest.raises(InvalidEvent):
        decode_purchase(json.dumps(instance).encode())


def test_offset_rule_holds_without_format_assertion() -> None:
    """Format assertion is optional in 2020-12: the pattern alone must reject a naive time."""
    plain = Draft202012Validator(load_schema("purchase"))  # no FormatChecker at all
    assert not plain.is_valid(_with(MINIMAL, occurred_at="2024-01-01T10:00:00"))
    assert plain.is_valid(_with(MINIMAL, occurred_at="2024-01-01T10:00:00Z"))


def test_validate_json_decodes_raw_messages() -> None:
    raw = b'{"event_id": "e-1", "customer_id": "00042", "occurred_at": 0, "amount": 19.99}'
    assert validate_json("purchase", raw)["amount"] == 19.99
    for bad in (
        b"\xff\xfe",
        b"{not json",
        b'{"event_id": "e", "customer_id": "c", "occurred_at": 0, "amount": NaN}',
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_json("purchase", bad)


def test_unknown_schema_name_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        load_schema("no-such-topic")
    with pytest.raises(ValueError):
        load_schema("../pyproject")


DLQ_EXAMPLE = {
    "schema_version": 1,
    "reason": "occurred_at: missing required field",
    "source": {"topic": "purchases", "partition": 0, "offset": 12, "key": "00042"},
    "payload": '{"event_id": "e-9", "customer_id": "00042", "amount": 12.5}',
    "payload_encoding": "utf-8",
    "payload_size": 59,
    "payload_sha256": "d883141f8f62e86a1a24531ad837b8406e2f7722eb6d37e22d5e1a1afe211db2",
    "payload_truncated": False,
    "failed_at": "2026-11-26T12:00:00+00:00",
}


def _source(**changes: Any) -> dict[str, Any]:
    return _with(DLQ_EXAMPLE, source=_with(DLQ_EXAMPLE["source"], **changes))


VALID_DEAD_LETTERS = {
    "example": DLQ_EXAMPLE,
    "null key": _source(key=None),
    "namespaced topic": _source(topic="shop1.purchases"),
    "base64 payload": _with(DLQ_EXAMPLE, payload="//79", payload_encoding="base64"),
    "empty payload (tombstone)": _with(DLQ_EXAMPLE, payload=""),
    "fractional failed_at": _with(DLQ_EXAMPLE, failed_at="2026-11-26T12:00:00.123456+00:00"),
}

INVALID_DEAD_LETTERS = {
    "missing reason": _without(DLQ_EXAMPLE, "reason"),
    "empty reason": _with(DLQ_EXAMPLE, reason=""),
    **{f"missing {field}": _without(DLQ_EXAMPLE, field) for field in DLQ_EXAMPLE if field != "reason"},
    "schema_version 2": _with(DLQ_EXAMPLE, schema_version=2),
    "unknown field": _with(DLQ_EXAMPLE, retries=3),
    "source without key": _with(DLQ_EXAMPLE, source={"topic": "purchases", "partition": 0, "offset": 12}),
    "source extra field": _source(timestamp=1),
    "negative offset": _source(offset=-1),
    "key as bytes list": _source(key=[0, 1]),
    "unknown encoding": _with(DLQ_EXAMPLE, payload_encoding="latin-1"),
    "base64 payload not base64": _with(DLQ_EXAMPLE, payload="not base64!", payload_encoding="base64"),
    "failed_at without offset": _with(DLQ_EXAMPLE, failed_at="2026-11-26T12:00:00"),
    "payload as object": _with(DLQ_EXAMPLE, payload={"event_id": "e-9"}),
    "sha256 not hex": _with(DLQ_EXAMPLE, payload_sha256="x" * 64),
    "reason over 1,000 characters": _with(DLQ_EXAMPLE, reason="r" * 1001),
}


@pytest.mark.parametrize("instance", VALID_DEAD_LETTERS.values(), ids=VALID_DEAD_LETTERS.keys())
def test_valid_dead_letters_are_accepted(instance: dict[str, Any]) -> None:
    validate("purchase-dlq", instance)


@pytest.mark.parametrize("instance", INVALID_DEAD_LETTERS.values(), ids=INVALID_DEAD_LETTERS.keys())
def test_invalid_dead_letters_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("purchase-dlq", instance)


# --------------------------------------------------------------------------- docs/asyncapi.yaml

ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    data = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _pointer(document: Any, fragment: str) -> Any:
    node = document
    for token in filter(None, fragment.split("/")):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_asyncapi_document_shape(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] == "segstream"
    assert asyncapi["info"]["version"] == "0.1.0"
    assert asyncapi["servers"]["local"]["host"] == "127.0.0.1:9092"
    assert asyncapi["servers"]["local"]["protocol"] == "kafka"
    channels = asyncapi["channels"]
    assert {"purchases", "purchasesDlq"} <= set(channels)
    assert channels["purchases"]["address"] == "purchases"
    assert channels["purchasesDlq"]["address"] == "purchases.dlq"
    text = ASYNCAPI.read_text(encoding="utf-8")
    for later in ("SEGSTREAM_NAMESPACE", "segment-changes", "customer-segments", "alerts"):
        assert later in text


def test_asyncapi_operations(asyncapi: dict[str, Any]) -> None:
    by_channel = {(op["action"], op["channel"]["$ref"]) for op in asyncapi["operations"].values()}
    assert ("send", "#/channels/purchases") in by_channel
    assert ("send", "#/channels/purchasesDlq") in by_channel
    assert ("receive", "#/channels/purchasesDlq") in by_channel


def test_asyncapi_refs_resolve(asyncapi: dict[str, Any]) -> None:
    refs = _refs(asyncapi)
    external = [ref for ref in refs if not ref.startswith("#")]
    assert sorted({ref.split("#")[0] for ref in external}) == [
        "../schemas/alert.schema.json",
        "../schemas/campaign-event.schema.json",
        "../schemas/clock-tick.schema.json",
        "../schemas/customer-segment.schema.json",
        "../schemas/customer-traits.schema.json",
        "../schemas/product.schema.json",
        "../schemas/purchase-dlq.schema.json",
        "../schemas/purchase.schema.json",
        "../schemas/review.schema.json",
        "../schemas/segment-change.schema.json",
        "../schemas/segment-move.schema.json",
    ]
    for ref in refs:
        target, _, fragment = ref.partition("#")
        if target:
            path = (ASYNCAPI.parent / target).resolve()
            assert path.is_file(), f"$ref {ref} points at a missing file"
            assert path.parent == SCHEMA_DIR
            document = load_schema(path.name.removesuffix(".schema.json"))
        else:
            document = asyncapi
        _pointer(document, fragment)  # raises KeyError/IndexError if the fragment is dangling


def test_asyncapi_message_examples_match_the_schemas(asyncapi: dict[str, Any]) -> None:
    checked = 0
    for message in asyncapi["components"]["messages"].values():
        assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-2020-12"
        name = Path(message["payload"]["schema"]["$ref"]).name.removesuffix(".schema.json")
        for example in message.get("examples", []):
            validate(name, example["payload"])
            checked += 1
    assert checked >= 2
