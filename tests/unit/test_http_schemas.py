"""The worker's HTTP JSON bodies (agents/web.py) match their JSON Schemas, and the schemas are strict.

Real documents are built from a small :class:`state.evaluator.evaluate.Evaluator` run over synthetic
customers: ``GET /customers/{id}`` with :func:`agents.web.customer_document` for every row
(a refund-only customer included), ``GET /segments`` as agents/web.py builds it, both after the
JSON round trip through the Redis profile store. Two runs: an early one before the cluster model
is published (model_version 0, no clusters) and a later one with clusters. The negative cases are
the produced documents with one thing broken. Pure tests: no services.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import jsonschema
import msgspec
import pytest
from jsonschema import Draft202012Validator

from agents.web import campaigns_document, customer_document, segments_document
from segstream.sources import history_logs, load_cdnow, occurred_at_ms
from state.customer.profiles import LogEntry, Profile
from state.evaluator.config import NEVER, EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.messages import profile_fields
from state.evaluator.predict import alive_and_expected
from state.evaluator.read_model import Summary, read_summary, summary_record
from state.models.clusters import ClusterConfig
from state.segments.segments import load_preset
from streams.outputs import rfc3339
from tests.schema_helpers import load_schema, validate, validator_for

PRESET = load_preset("rfm11")
CONFIG = EvaluatorConfig(PRESET, ClusterConfig(k_max=4, warmup=300, publish_every=NEVER), learn_per_step=20)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START = 1_795_046_400_000  # 2026-11-19T00:00:00Z
RUNS = {"early": START + 3 * DAY_MS, "late": START + 40 * DAY_MS}  # the evaluator's clock after each run
REFUND_ONLY = "refund-only"
NET_REFUND = "c05"  # refunds more than they bought: negative monetary, still a buyer with a profile
SAME_DAY = "same-day"  # two purchases on one UTC day: purchase_days < frequency


def _logs() -> dict[str, list[LogEntry]]:
    logs: dict[str, list[LogEntry]] = {}
    for i in range(30):
        c = f"c{i:02d}"
        logs[c] = [
            LogEntry(
                START + (i % 10) * DAY_MS + j * (3 + i % 4) * DAY_MS + i * HOUR_MS,
                f"{c}-{j}",
                "purchase",
                500 + 731 * i + 97 * j,
            )
            for j in range(1 + i % 5)
        ]
    logs["c03"].append(LogEntry(START + 12 * DAY_MS, "c03-r", "refund", -200))
    logs[NET_REFUND].append(LogEntry(START + 13 * DAY_MS, f"{NET_REFUND}-r", "refund", -100_000))
    logs[REFUND_ONLY] = [LogEntry(START + 2 * DAY_MS, "ro-1", "refund", -1500)]
    logs[SAME_DAY] = [
        LogEntry(START + HOUR_MS, "sd-1", "purchase", 1999),
        LogEntry(START + 5 * HOUR_MS, "sd-2", "purchase", 1),
    ]
    return logs


@cache
def evaluator(run: str) -> Evaluator:
    """The evaluator after evaluating every instant up to ``RUNS[run]`` (events before it only)."""
    to_ms = RUNS[run]
    logs = {c: [e for e in log if e.occurred_at_ms < to_ms] for c, log in _logs().items()}
    ev = Evaluator(CONFIG)
    ev.advance(to_ms, {c: log for c, log in logs.items() if log})
    return ev


def _stored(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` after the JSON round trip (RedisProfileStore stores rows and the summary as JSON)."""
    decoded: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    return decoded


def _stored_summary(ev: Evaluator) -> Summary:
    """The evaluator's summary after the store's JSON round trip, decoded as every reader does."""
    return read_summary(_stored(summary_record(ev.summary())))


@cache
def _summary(run: str) -> Summary:
    return _stored_summary(evaluator(run))


def customers(run: str) -> dict[str, dict[str, Any]]:
    """``GET /customers/{id}`` of every customer the evaluator has seen, by customer_id."""
    ev = evaluator(run)
    records = [_stored(ev.population.record(row)) for row in range(len(ev.population))]
    return {r["customer_id"]: _stored(customer_document(r, _summary(run))) for r in records}


def segments_body(summary: Summary) -> dict[str, Any]:
    """``GET /segments`` exactly as agents/web.py builds it from the stored summary."""
    return _stored(segments_document(summary))


def not_found(customer_id: str) -> dict[str, Any]:
    """The 404 body of ``GET /customers/{id}`` as agents/web.py builds it."""
    return _stored({"error": f"unknown customer {customer_id!r}"})


def _set(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A deep copy of ``value`` with the field at dotted ``path`` set to ``new`` (list indexes allowed)."""
    broken = copy.deepcopy(value)
    *parents, last = path.split(".")
    node: Any = broken
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = new
    return broken


def _drop(value: dict[str, Any], path: str) -> dict[str, Any]:
    broken = copy.deepcopy(value)
    *parents, last = path.split(".")
    node: Any = broken
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return broken


def _validate_all(name: str, documents: dict[str, dict[str, Any]]) -> None:
    for key, document in documents.items():
        try:
            validate(name, document)
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{name} of {key!r} is invalid: {exc.message} at {list(exc.path)}") from exc


# --------------------------------------------------------------------------- GET /customers/{id}


@pytest.mark.parametrize("run", RUNS)
def test_every_customer_document_matches_the_schema(run: str) -> None:
    ev, documents = evaluator(run), customers(run)
    seen = {c for c, log in _logs().items() if any(e.occurred_at_ms < RUNS[run] for e in log)}
    assert set(documents) == seen and len(seen) == len(ev.population) >= 10
    _validate_all("http-customer", documents)
    for customer_id, document in documents.items():
        row = ev.population.index[customer_id]
        profile = ev.population.profiles[row]
        state = ev.population.state(row)
        assert document["customer_id"] == customer_id
        assert document["as_of"] == rfc3339(RUNS[run])
        assert document["profile"] == (None if profile is None else profile_fields(profile))
        assert document["state"]["frequency"] == state.frequency
        assert document["state"]["monetary"] == state.monetary_cents / 100
        assert document["cutpoint_version"] == (ev.cutpoints.version if ev.cutpoints else 0)
        assert document["model_version"] == ev.model.version


@pytest.mark.parametrize("run", RUNS)
def test_refund_only_customer_has_no_profile(run: str) -> None:
    document = customers(run)[REFUND_ONLY]
    validate("http-customer", document)
    assert document["profile"] is None
    assert document["cluster_since"] is None
    assert document["state"] == {
        "frequency": 0,
        "purchase_days": 0,
        "monetary": -15.0,
        "refunds": 1,
        "first_purchase_at": None,
        "last_purchase_at": None,
        "recency_days": None,
    }


def test_net_refund_and_same_day_customers() -> None:
    documents = customers("late")
    net, same_day = documents[NET_REFUND]["state"], documents[SAME_DAY]["state"]
    assert net["monetary"] < 0 and net["refunds"] == 1
    assert documents[NET_REFUND]["profile"] is not None
    assert (same_day["frequency"], same_day["purchase_days"]) == (2, 1)
    assert same_day["first_purchase_at"] == rfc3339(START + HOUR_MS)
    assert same_day["last_purchase_at"] == rfc3339(START + 5 * HOUR_MS)
    assert same_day["recency_days"] == 39  # 40 days minus 5 hours, rounded down
    validate("http-customer", documents[NET_REFUND])
    validate("http-customer", documents[SAME_DAY])


def test_early_documents_have_no_cluster_and_late_ones_do() -> None:
    """Both branches of the cluster_since rule are exercised by real documents."""
    early, late = customers("early").values(), customers("late").values()
    assert {d["model_version"] for d in early} == {0}
    assert all(d["profile"] is None or d["profile"]["cluster"] is None for d in early)
    assert all(d["cluster_since"] is None for d in early)
    clustered = [d for d in late if d["profile"] is not None and d["profile"]["cluster"] is not None]
    assert clustered and {d["model_version"] for d in late} == {evaluator("late").model.version} != {0}
    population = evaluator("late").population
    for document in clustered:
        since_ms = population.record(population.index[document["customer_id"]])["since_ms"]
        assert START < since_ms <= RUNS["late"]
        assert document["cluster_since"] == rfc3339(since_ms)


@cache
def predicted() -> tuple[Evaluator, dict[str, dict[str, Any]]]:
    """300 CDNOW customers over their first 300 days: lifetime model and churn model in place."""
    frame = load_cdnow(sample=True)
    frame = frame[frame["customer_id"].isin(sorted(frame["customer_id"].unique())[:300])]
    logs = history_logs(frame)
    to_ms = min(occurred_at_ms(frame)) // DAY_MS * DAY_MS + 300 * DAY_MS
    ev = Evaluator(CONFIG)
    ev.advance(to_ms, {c: [e for e in log if e.occurred_at_ms < to_ms] for c, log in logs.items()})
    summary = _stored_summary(ev)
    records = [_stored(ev.population.record(row)) for row in range(len(ev.population))]
    return ev, {r["customer_id"]: _stored(customer_document(r, summary)) for r in records}


def test_customer_documents_with_predictions_match_the_schema_and_the_evaluator() -> None:
    ev, documents = predicted()
    _validate_all("http-customer", documents)
    assert ev.lifetime is not None and ev.churn.version > 0
    pop = ev.population
    rows = pop.buyers()
    alive, _ = alive_and_expected(ev.lifetime, pop.columns(rows), ev.clock_ms or 0)
    for row, p_alive in zip(rows.tolist(), alive.tolist(), strict=True):
        predictions = documents[pop.ids[row]]["predictions"]
        assert predictions["p_alive"] == pytest.approx(p_alive, rel=1e-12)
        assert predictions["lifetime_model_version"] == ev.lifetime.version
        assert predictions["churn_model_version"] == ev.churn.version
        assert predictions["churn_band"] == {1: "Low", 2: "Medium", 3: "High"}[int(pop.column("band")[row])]
        assert 0 < predictions["churn_probability"] < 1
    bands = {d["predictions"]["churn_band"] for d in documents.values()}
    assert len(bands) >= 2, bands


def test_customer_document_without_a_summary() -> None:
    """A saved row read before any summary: no as_of, versions 0, no recency."""
    ev = evaluator("early")
    row = ev.population.index["c00"]
    document = _stored(customer_document(_stored(ev.population.record(row)), None))
    validate("http-customer", document)
    assert document["as_of"] is None
    assert (document["cutpoint_version"], document["model_version"]) == (0, 0)
    assert document["state"]["recency_days"] is None
    assert document["state"]["last_purchase_at"] is not None


def test_customer_schema_keys_are_the_code_keys() -> None:
    document = customers("late")["c29"]
    schema = load_schema("http-customer")
    assert list(schema["properties"]) == schema["required"] == list(document)
    state = schema["$defs"]["state"]
    assert list(state["properties"]) == state["required"] == list(document["state"])
    assert schema["$defs"]["profile"]["required"] == list(Profile._fields)


def test_customer_shared_definitions_are_those_of_segment_change() -> None:
    ours, theirs = load_schema("http-customer")["$defs"], load_schema("segment-change")["$defs"]
    shared = set(ours) & set(theirs)
    assert {"customerId", "rfc3339UtcDateTime", "score", "cluster", "clusterName", "profile"} <= shared
    for name in shared:
        assert ours[name] == theirs[name], name


def _clustered_document() -> dict[str, Any]:
    documents = customers("late")
    (first, *_) = [d for d in documents.values() if d["profile"] and d["profile"]["cluster"] is not None]
    return first


CUSTOMER = _clustered_document()
UNPROFILED = customers("late")[REFUND_ONLY]
INVALID_CUSTOMERS = {
    **{f"missing {field}": _drop(CUSTOMER, field) for field in CUSTOMER},
    **{f"missing state.{field}": _drop(CUSTOMER, f"state.{field}") for field in CUSTOMER["state"]},
    "missing profile.cluster_name": _drop(CUSTOMER, "profile.cluster_name"),
    "missing profile.r_score": _drop(CUSTOMER, "profile.r_score"),
    "extra property": _set(CUSTOMER, "rule", {}),
    "extra property in state": _set(CUSTOMER, "state.recency", 3),
    "extra property in profile": _set(CUSTOMER, "profile.churn_risk", 0.2),
    "schema_version 2": _set(CUSTOMER, "schema_version", 2),
    "empty customer_id": _set(CUSTOMER, "customer_id", ""),
    "negative frequency": _set(CUSTOMER, "state.frequency", -1),
    "frequency as float": _set(CUSTOMER, "state.frequency", 2.5),
    "negative refunds": _set(CUSTOMER, "state.refunds", -1),
    "negative recency_days": _set(CUSTOMER, "state.recency_days", -1),
    "monetary as string": _set(CUSTOMER, "state.monetary", "10.00"),
    "r_score 6": _set(CUSTOMER, "profile.r_score", 6),
    "cluster without a name": _set(CUSTOMER, "profile.cluster_name", None),
    "cluster but no cluster_since": _set(CUSTOMER, "cluster_since", None),
    "cluster_since without a cluster": _set(
        _set(CUSTOMER, "profile.cluster", None), "profile.cluster_name", None
    ),
    "cluster_since without a profile": _set(UNPROFILED, "cluster_since", CUSTOMER["cluster_since"]),
    "profile empty object": _set(CUSTOMER, "profile", {}),
    "buyer without last_purchase_at": _set(CUSTOMER, "state.last_purchase_at", None),
    "buyer with 0 purchase_days": _set(CUSTOMER, "state.purchase_days", 0),
    "no purchase but a first_purchase_at": _set(UNPROFILED, "state.first_purchase_at", CUSTOMER["as_of"]),
    "no purchase but purchase_days": _set(UNPROFILED, "state.purchase_days", 1),
    "no purchase but recency_days": _set(UNPROFILED, "state.recency_days", 0),
    "recency_days null with a last purchase and as_of": _set(CUSTOMER, "state.recency_days", None),
    "recency_days without as_of": _set(CUSTOMER, "as_of", None),
    "as_of with +00:00": _set(CUSTOMER, "as_of", "2026-12-29T00:00:00.000+00:00"),
    "as_of as epoch ms": _set(CUSTOMER, "as_of", RUNS["late"]),
    "cluster_since impossible date": _set(CUSTOMER, "cluster_since", "2026-02-30T00:00:00.000Z"),
    "negative cutpoint_version": _set(CUSTOMER, "cutpoint_version", -1),
    "model_version as string": _set(CUSTOMER, "model_version", "2"),
}


def test_the_broken_customer_documents_start_valid() -> None:
    validate("http-customer", CUSTOMER)
    validate("http-customer", UNPROFILED)
    assert CUSTOMER["cluster_since"] is not None
    assert len(INVALID_CUSTOMERS) > len(CUSTOMER) + len(CUSTOMER["state"])


@pytest.mark.parametrize("instance", INVALID_CUSTOMERS.values(), ids=INVALID_CUSTOMERS.keys())
def test_invalid_customer_documents_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("http-customer", instance)


# --------------------------------------------------------------------------- GET /segments


@pytest.mark.parametrize("run", RUNS)
def test_segments_body_matches_the_schema(run: str) -> None:
    ev, body = evaluator(run), segments_body(_summary(run))
    validate("http-segments", body)
    assert body["as_of"] == rfc3339(RUNS[run]) and body["as_of_ms"] == RUNS[run]
    assert body["preset"] == PRESET.name
    assert [s["segment"] for s in body["segments"]] == list(PRESET.segments)
    assert [c["cluster"] for c in body["clusters"]] == sorted(ev.model.cluster_names())
    profiled = sum(p is not None for p in ev.population.profiles)
    assert body["customers"] == profiled == sum(s["customers"] for s in body["segments"])
    assert profiled < len(ev.population)  # the refund-only customer is not counted


def test_segments_before_and_after_the_first_model() -> None:
    early, late = segments_body(_summary("early")), segments_body(_summary("late"))
    assert (early["model_version"], early["clusters"]) == (0, [])
    assert late["model_version"] >= 1 and late["clusters"]
    assert sum(c["customers"] for c in late["clusters"]) > 0
    assert any(s["mean_monetary"] is not None and s["mean_monetary"] < 0 for s in late["segments"])
    assert any(s["customers"] == 0 for s in late["segments"])  # empty groups: null means


def test_segments_schema_keys_are_the_code_keys() -> None:
    body = segments_body(_summary("late"))
    schema = load_schema("http-segments")
    assert set(schema["properties"]) == set(schema["required"]) == set(body)
    for row, definition in ((body["segments"][0], "segmentRow"), (body["clusters"][0], "clusterRow")):
        properties = schema["$defs"][definition]
        assert list(properties["properties"]) == properties["required"] == list(row)
    assert "segment" not in schema["$defs"]["clusterRow"]["properties"]


def test_segments_date_time_profile_is_the_shared_one() -> None:
    ours = load_schema("http-segments")["$defs"]["rfc3339UtcDateTime"]
    assert ours == load_schema("segment-change")["$defs"]["rfc3339UtcDateTime"]


SEGMENTS = segments_body(_summary("late"))
_FULL = next(i for i, s in enumerate(SEGMENTS["segments"]) if s["customers"] > 0)
_EMPTY = next(i for i, s in enumerate(SEGMENTS["segments"]) if s["customers"] == 0)
INVALID_SEGMENTS = {
    **{f"missing {field}": _drop(SEGMENTS, field) for field in SEGMENTS},
    **{
        f"missing segments.{field}": _drop(SEGMENTS, f"segments.{_FULL}.{field}")
        for field in SEGMENTS["segments"][_FULL]
    },
    **{
        f"missing clusters.{field}": _drop(SEGMENTS, f"clusters.0.{field}")
        for field in SEGMENTS["clusters"][0]
    },
    "extra property": _set(SEGMENTS, "population", 31),
    "extra property in a segment": _set(SEGMENTS, f"segments.{_FULL}.median_monetary", 1.0),
    "segment key in a cluster": _set(SEGMENTS, "clusters.0.segment", "Champions"),
    "share 1.5": _set(SEGMENTS, f"segments.{_FULL}.share", 1.5),
    "negative share": _set(SEGMENTS, f"segments.{_FULL}.share", -0.1),
    "value_share 1.01": _set(SEGMENTS, "clusters.0.value_share", 1.01),
    "share as string": _set(SEGMENTS, f"segments.{_FULL}.share", "0.5"),
    "negative customers": _set(SEGMENTS, "customers", -1),
    "negative group customers": _set(SEGMENTS, f"segments.{_FULL}.customers", -1),
    "empty group with a mean": _set(SEGMENTS, f"segments.{_EMPTY}.mean_frequency", 1.0),
    "empty group with a share": _set(SEGMENTS, f"segments.{_EMPTY}.share", 0.1),
    "group with customers but null mean": _set(SEGMENTS, f"segments.{_FULL}.mean_recency_days", None),
    "mean_frequency below 1": _set(SEGMENTS, f"segments.{_FULL}.mean_frequency", 0.5),
    "negative mean_recency_days": _set(SEGMENTS, f"segments.{_FULL}.mean_recency_days", -1.0),
    "negative cluster id": _set(SEGMENTS, "clusters.0.cluster", -1),
    "cluster id as string": _set(SEGMENTS, "clusters.0.cluster", "0"),
    "empty cluster name": _set(SEGMENTS, "clusters.0.name", ""),
    "empty segment name": _set(SEGMENTS, f"segments.{_FULL}.segment", ""),
    "no segments": _set(SEGMENTS, "segments", []),
    "segments as object": _set(SEGMENTS, "segments", {"Champions": SEGMENTS["segments"][0]}),
    "empty preset": _set(SEGMENTS, "preset", ""),
    "negative as_of_ms": _set(SEGMENTS, "as_of_ms", -1),
    "as_of_ms past year 9999": _set(SEGMENTS, "as_of_ms", 253_402_300_800_000),
    "as_of with +00:00": _set(SEGMENTS, "as_of", "2026-12-29T00:00:00.000+00:00"),
    "as_of null": _set(SEGMENTS, "as_of", None),
    "as_of impossible date": _set(SEGMENTS, "as_of", "2026-04-31T00:00:00.000Z"),
    "schema_version 0": _set(SEGMENTS, "schema_version", 0),
}


def test_the_broken_segments_body_starts_valid() -> None:
    validate("http-segments", SEGMENTS)
    assert SEGMENTS["clusters"] and SEGMENTS["segments"][_EMPTY]["mean_frequency"] is None
    assert len(INVALID_SEGMENTS) > len(SEGMENTS)


@pytest.mark.parametrize("instance", INVALID_SEGMENTS.values(), ids=INVALID_SEGMENTS.keys())
def test_invalid_segments_bodies_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("http-segments", instance)


# --------------------------------------------------------------------------- 404 bodies


def test_error_bodies_match_the_schema() -> None:
    bodies = {
        "unknown customer": not_found("00042"),
        "unknown customer with quotes": not_found('it\'s "odd"'),
        "no segments yet": _stored({"error": "no segments yet: the evaluator has not had a clock tick"}),
    }
    _validate_all("http-error", bodies)
    assert bodies["unknown customer"] == {"error": "unknown customer '00042'"}


ERROR = not_found("00042")
INVALID_ERRORS = {
    "extra property": _set(ERROR, "status", 404),
    "missing error": {},
    "empty error": {"error": ""},
    "blank error": {"error": "   "},
    "error as object": {"error": {"message": "unknown customer"}},
    "error null": {"error": None},
    "not an object": ["unknown customer"],
}


@pytest.mark.parametrize("instance", INVALID_ERRORS.values(), ids=INVALID_ERRORS.keys())
def test_invalid_error_bodies_are_rejected(instance: Any) -> None:
    validate("http-error", ERROR)
    with pytest.raises(jsonschema.ValidationError):
        validate("http-error", instance)


# --------------------------------------------------------------------------- date-time rules

TIMES = {"http-customer": ("as_of", CUSTOMER), "http-segments": ("as_of", SEGMENTS)}


@pytest.mark.parametrize("name", TIMES)
def test_date_time_format_is_asserted(name: str) -> None:
    """2026-02-30 fits the pattern, so only the date-time format check can reject it."""
    field, valid = TIMES[name]
    impossible = _set(valid, field, "2026-02-30T00:00:00.000Z")
    assert Draft202012Validator(load_schema(name)).is_valid(impossible)  # pattern only
    assert not validator_for(name).is_valid(impossible)


@pytest.mark.parametrize("name", TIMES)
def test_utc_rule_holds_without_format_assertion(name: str) -> None:
    field, valid = TIMES[name]
    plain = Draft202012Validator(load_schema(name))  # no FormatChecker at all
    assert plain.is_valid(valid)
    for bad in ("2026-12-29T00:00:00.000+00:00", "2026-12-29T00:00:00.000z", "2026-12-29 00:00:00.000Z"):
        assert not plain.is_valid(_set(valid, field, bad)), bad


def test_campaigns_body_matches_the_schema_and_the_readout() -> None:
    """``GET /campaigns`` after campaign events went through the evaluator."""
    from tests.unit.test_evaluate import CONFIG as EVALUATE_CONFIG
    from tests.unit.test_evaluate import campaign_events, synthetic_logs

    day0 = 28 * 400 * DAY_MS
    ev = Evaluator(EVALUATE_CONFIG)
    ev.advance(day0 + 200 * DAY_MS, synthetic_logs(day0), campaign_events(day0))
    body = _stored(campaigns_document(_stored_summary(ev)))
    validate("http-campaigns", body)
    assert body["exposures"] == 300 and body["readout"] == _stored({"r": ev.campaigns.readout()})["r"]
    verdicts = {r["verdict"] for r in body["readout"] if r["segment"] == "all"}
    assert verdicts == {"control", "better than control"}
    uplift = body["uplift"]
    assert uplift["model_version"] == 2 and uplift["customers"] == sum(
        r["customers"] for r in uplift["by_segment"]
    )
    assert 0 <= uplift["suggested_target"] <= uplift["customers"]
    assert (
        campaigns_document(msgspec.structs.replace(_stored_summary(ev), uplift=None))["uplift"] is None
    )  # before it learned
    broken = copy.deepcopy(body)
    broken["readout"][1]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate("http-campaigns", broken)
