"""Verdicts and checks of ``bench/fuzz.py`` (``make fuzz``): what each payload should come to, and
whether the run's dead letters, store totals and customer states bear that out.

``contract_verdict`` calls the contract's own validator as the worker does, so every payload's
expected outcome is exact; ``check`` holds the published payloads against the dead-letter topic,
the store's totals and (``compare_states``) a pandas oracle of the accepted ones, and builds the
``bench/fuzz.json`` record. Kept apart from the run (stack, worker, publishing) and from payload
generation: these functions read what the run collected and nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from harness import Supervisor
from jsonschema import ValidationError

from segstream.batch import rfm_table
from state.customer.rfm import DAY_MS
from streams.contract import InvalidEvent, Purchase, decode_purchase
from streams.limits import InputLimits
from tests.schema_helpers import validate_json

PANDAS_MAX_MS = int(pd.Timestamp.max.timestamp() * 1000) - DAY_MS
_REASON = re.compile(r"^([A-Za-z_][\w.\[\]]*): \S")


@dataclass(frozen=True)
class Raised:
    """The validator raised something other than ``InvalidEvent``: the worker's batch would fail."""

    error: str


@dataclass
class Payload:
    kind: str
    size: int
    accepted: Purchase | None
    reason: str | None
    raised: str | None
    schema_valid: bool | None
    preview: str


def contract_verdict(raw: bytes, limits: InputLimits) -> Purchase | str | Raised:
    """The worker's own check, called as ``agents.ingest`` calls it: an empty value is rejected,
    else ``decode_purchase`` with the worker's limits (``Settings.input_limits()``) and the wall
    clock (the generated times are nowhere near the accepted window's upper end)."""
    try:
        if not raw:
            raise InvalidEvent("payload: empty message value")
        return decode_purchase(raw, limits, int(time.time() * 1000))
    except InvalidEvent as exc:
        return exc.reason
    except Exception as exc:
        return Raised(f"{type(exc).__name__}: {str(exc)[:200]}")


def schema_verdict(raw: bytes) -> bool | None:
    """True/False: the JSON Schema accepts/rejects it; None: Python's json cannot even parse it (depth)."""
    try:
        validate_json("purchase", raw)
        return True
    except ValidationError:
        return False
    except (RecursionError, ValueError):
        return None


def check(
    args: argparse.Namespace,
    payloads: list[Payload],
    metadata: dict[int, tuple[int, int]],
    stats: Any,
    letters: list[Any],
    states: list[Any],
    sup: Supervisor,
    generated_s: float,
    done_at: float | None,
    started: float,
    root: Path,
    unsendable: Counter[str],
    generation_errors: list[str],
) -> dict[str, Any]:
    at_source = {pos: i for i, pos in metadata.items()}
    accepted = [i for i in metadata if payloads[i].accepted is not None]
    rejected = [i for i in metadata if payloads[i].reason is not None]
    raised = [i for i in metadata if payloads[i].raised is not None]
    # dead letters
    lettered: dict[int, list[str]] = {}
    unmatched = 0
    for letter in letters:
        body = json.loads(letter.value)
        index = at_source.get((body["source"]["partition"], body["source"]["offset"]))
        if index is None:
            unmatched += 1
            continue
        lettered.setdefault(index, []).append(str(body.get("reason", "")))
    missing_letters = [i for i in rejected if i not in lettered]
    bad_reasons = [i for i in rejected if i in lettered and not all(_REASON.match(r) for r in lettered[i])]
    reason_differs = [i for i in rejected if i in lettered and lettered[i][0] != payloads[i].reason]
    accepted_lettered = [i for i in accepted if i in lettered]
    distinct_accepted = {(p.customer_id, p.event_id) for p in (payloads[i].accepted for i in accepted) if p}
    # schema-invalid => rejected
    schema_escapes = [i for i in accepted if payloads[i].schema_valid is False]
    # state vs oracle
    oracle = compare_states([payloads[i].accepted for i in accepted], states)  # type: ignore[misc]
    slot = sup.slots[0]
    by_kind: dict[str, Counter[str]] = {}
    for i in metadata:
        p = payloads[i]
        outcome = "accepted" if p.accepted else ("rejected" if p.reason is not None else "validator_raised")
        by_kind.setdefault(p.kind, Counter())[outcome] += 1
        by_kind[p.kind][
            "schema_valid"
            if p.schema_valid
            else ("schema_undecidable" if p.schema_valid is None else "schema_invalid")
        ] += 1
    reasons = Counter((payloads[i].reason or "").split(":", 1)[0] for i in rejected)
    checks = {
        "contract_validator_never_raises": not raised,
        "worker_never_exited": not slot.exits and slot.started == 1,
        "every_rejected_payload_dead_lettered": not missing_letters,
        "dead_letter_reasons_name_a_field": not bad_reasons,
        "no_accepted_payload_dead_lettered": not accepted_lettered,
        # a mutation can give two payloads one event_id (e.g. "0"): the second is a resend, applied once
        "applied_count_equals_accepted": stats is not None
        and stats.applied == len(distinct_accepted)
        and stats.duplicates == len(accepted) - len(distinct_accepted),
        "invalid_count_equals_rejected": stats is not None and stats.invalid == len(rejected),
        "state_equals_oracle_of_accepted": oracle["equal"],
        "schema_invalid_implies_rejected": not schema_escapes,
        "worker_saw_everything": done_at is not None,
    }

    def show(indexes: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "kind": payloads[i].kind,
                "reason": payloads[i].reason,
                "letters": lettered.get(i),
                "payload": payloads[i].preview,
            }
            for i in indexes[:5]
        ]

    return {
        "root": str(root),
        "payloads": len(payloads),
        "published": len(metadata),
        "accepted": len(accepted),
        "accepted_distinct_event_ids": len(distinct_accepted),
        "rejected": len(rejected),
        "validator_raised": len(raised),
        "validator_raised_errors": dict(
            Counter((payloads[i].raised or "")[:80] for i in raised).most_common(10)
        ),
        "unsendable": dict(unsendable),
        "generation_errors": generation_errors,
        "bytes_published": sum(payloads[i].size for i in metadata),
        "largest_payload_bytes": max((payloads[i].size for i in metadata), default=0),
        "generate_and_publish_s": round(generated_s, 1),
        "worker_done_s": round(done_at - started, 1) if done_at else None,
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "rejected_by_reason_prefix": dict(reasons.most_common()),
        "schema": {
            "invalid": sum(1 for i in metadata if payloads[i].schema_valid is False),
            "valid": sum(1 for i in metadata if payloads[i].schema_valid),
            "undecidable_too_deep_for_python_json": sum(
                1 for i in metadata if payloads[i].schema_valid is None
            ),
            "invalid_but_accepted_by_contract": len(schema_escapes),
            "valid_but_rejected_by_contract": sum(1 for i in rejected if payloads[i].schema_valid),
        },
        "dead_letters": {
            "messages": len(letters),
            "unmatched_source": unmatched,
            "missing_for_rejected": len(missing_letters),
            "repeated_for_one_source": sum(1 for v in lettered.values() if len(v) > 1),
            "reason_not_naming_a_field": len(bad_reasons),
            "reason_differs_from_in_process_contract": len(reason_differs),
            "for_accepted_payloads": len(accepted_lettered),
        },
        "store": asdict(stats) if stats is not None else None,
        "oracle": oracle,
        "worker": sup.report()[0],
        "examples": {
            "missing_letters": show(missing_letters),
            "bad_reasons": show(bad_reasons),
            "schema_invalid_but_accepted": show(schema_escapes),
            "accepted_but_dead_lettered": show(accepted_lettered),
            "validator_raised": show(raised),
        },
        "checks": checks,
    }


def compare_states(accepted: list[Purchase], states: list[Any]) -> dict[str, Any]:
    """Redis states vs ``segstream.batch.rfm_table`` over the accepted events (plain fold beyond 2262)."""
    fold: dict[str, dict[str, Any]] = {}
    for p in accepted:
        f = fold.setdefault(
            p.customer_id,
            {"frequency": 0, "monetary_cents": 0, "refunds": 0, "days": set(), "first": None, "last": None},
        )
        f["monetary_cents"] += p.amount_cents
        if p.type == "purchase":
            f["frequency"] += 1
            f["days"].add(p.occurred_at_ms // DAY_MS)
            f["first"] = p.occurred_at_ms if f["first"] is None else min(f["first"], p.occurred_at_ms)
            f["last"] = p.occurred_at_ms if f["last"] is None else max(f["last"], p.occurred_at_ms)
        else:
            f["refunds"] += 1
    beyond = {p.customer_id for p in accepted if p.occurred_at_ms > PANDAS_MAX_MS}
    in_pandas = [p for p in accepted if p.customer_id not in beyond]
    expected: dict[str, tuple[Any, ...]] = {}
    if in_pandas:
        history = pd.DataFrame(
            {
                "event_id": [p.event_id for p in in_pandas],
                "customer_id": [p.customer_id for p in in_pandas],
                "occurred_at": pd.to_datetime([p.occurred_at_ms for p in in_pandas], unit="ms", utc=True),
                "amount": [p.amount_cents / 100 for p in in_pandas],
                "type": [p.type for p in in_pandas],
            }
        )
        table = rfm_table(history)

        def millis(column: str) -> list[int | None]:
            stamps = table[column].astype("datetime64[ms, UTC]")
            values = stamps.astype("int64").tolist()
            return [None if gone else int(v) for v, gone in zip(values, stamps.isna().tolist(), strict=True)]

        columns = (
            table["customer_id"].astype(str).tolist(),
            table["frequency"].astype("int64").tolist(),
            table["purchase_days"].astype("int64").tolist(),
            table["monetary_cents"].astype("int64").tolist(),
            table["refunds"].astype("int64").tolist(),
            millis("first_purchase_at"),
            millis("last_purchase_at"),
        )
        for customer, *row in zip(*columns, strict=True):
            expected[customer] = tuple(row)
    for customer in beyond:
        f = fold[customer]
        expected[customer] = (
            f["frequency"],
            len(f["days"]),
            f["monetary_cents"],
            f["refunds"],
            f["first"],
            f["last"],
        )
    live = {
        s.customer_id: (
            s.frequency,
            s.purchase_days,
            s.monetary_cents,
            s.refunds,
            s.first_purchase_ms,
            s.last_purchase_ms,
        )
        for s in states
    }
    differ = [c for c in expected.keys() & live.keys() if expected[c] != live[c]]
    return {
        "customers_expected": len(expected),
        "customers_live": len(live),
        "checked_by_plain_fold_beyond_2262": len(beyond),
        "missing": len(expected.keys() - live.keys()),
        "extra": len(live.keys() - expected.keys()),
        "differ": len(differ),
        "examples": [{"customer_id": c, "expected": expected[c], "live": live[c]} for c in differ[:5]],
        "equal": expected.keys() == live.keys() and not differ,
    }
