"""RFM scores 1-5 from the live population, and named segments from preset rule tables.

A customer's score on one dimension is ``1 + floor(5 * worse / N)``, capped at 5, where
``worse`` counts the customers with a strictly smaller value (older last purchase, fewer
purchases, lower net spend) and ``N`` counts the customers with at least one purchase.
Equal values have equal ``worse`` counts, so ties always share a score.

A preset is an ordered table of boxes of score ranges; the first rule that contains a
customer's ``(r, f, m)`` names their segment. Presets are JSON data in ``state/segments/presets``.

>>> rfm_scores([30, 20, 10, 10], [1, 3, 2, 2], [500, 900, 100, 100])
[(4, 1, 3), (3, 4, 4), (1, 2, 1), (1, 2, 1)]
>>> preset = load_preset("rfm11")
>>> preset.segment_for(5, 5, 5).segment, preset.segment_for(1, 5, 5).segment
('Champions', "Can't Lose Them")
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from state.customer.rfm import CustomerState

__all__ = [
    "MAX_SCORE",
    "MIN_SCORE",
    "Preset",
    "PresetError",
    "Rule",
    "available_presets",
    "exact_scores",
    "load_preset",
    "load_preset_file",
    "parse_preset",
    "rfm_scores",
    "score",
    "score_customers",
]

MIN_SCORE, MAX_SCORE = 1, 5
_LEVELS = MAX_SCORE - MIN_SCORE + 1
_ALL_SCORES = range(MIN_SCORE, MAX_SCORE + 1)
_PRESET_KEYS = frozenset({"name", "version", "description", "rules"})
_RULE_KEYS = frozenset({"segment", "r", "f", "m", "description", "action", "channel"})
_OPTIONAL_RULE_KEYS = frozenset({"description", "action", "channel"})

Scores = tuple[int, int, int]
Values = Sequence[int] | npt.NDArray[np.integer[Any]]


# --------------------------------------------------------------------------- scores


def score(worse: int, population: int) -> int:
    """The score of a customer with ``worse`` strictly worse customers among ``population``.

    >>> [score(w, 5) for w in range(5)]
    [1, 2, 3, 4, 5]
    >>> [score(w, 7) for w in range(7)]
    [1, 1, 2, 3, 3, 4, 5]
    >>> score(0, 1)
    1
    """
    if population <= 0:
        raise ValueError(f"population must be at least 1 customer with a purchase, got {population}")
    if not 0 <= worse < population:
        raise ValueError(
            f"worse must be in 0..{population - 1} for a population of {population}, got {worse}"
        )
    return min(MIN_SCORE + (_LEVELS * worse) // population, MAX_SCORE)


def exact_scores(values: Values) -> npt.NDArray[np.int64]:
    """Score every value against the whole array (larger is better) in O(N log N).

    >>> exact_scores([10, 40, 20, 20, 30]).tolist()
    [1, 5, 2, 2, 4]
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"values must be integers (ms, counts, cents), got dtype {array.dtype}")
    worse = np.searchsorted(np.sort(array), array, side="left").astype(np.int64)
    scores: npt.NDArray[np.int64] = np.minimum(MIN_SCORE + (_LEVELS * worse) // array.size, MAX_SCORE)
    return scores


def rfm_scores(last_purchase_ms: Values, frequency: Values, monetary_cents: Values) -> list[Scores]:
    """``(r, f, m)`` per customer; the arrays are the population (customers with a purchase)."""
    sizes = {len(last_purchase_ms), len(frequency), len(monetary_cents)}
    if len(sizes) != 1:
        raise ValueError(f"the three value arrays must have one length per customer, got lengths {sizes}")
    if len(frequency) and int(np.min(frequency)) < 1:
        raise ValueError(
            "every scored customer needs frequency >= 1: customers without a purchase are not scored"
        )
    r, f, m = (exact_scores(v).tolist() for v in (last_purchase_ms, frequency, monetary_cents))
    return list(zip(r, f, m, strict=True))


def score_customers(states: Iterable[CustomerState]) -> dict[str, Scores]:
    """Scores of the customers with at least one purchase, by customer id."""
    buyers = [(s, s.last_purchase_ms) for s in states if s.frequency > 0 and s.last_purchase_ms is not None]
    scores = rfm_scores(
        [last for _, last in buyers], [s.frequency for s, _ in buyers], [s.monetary_cents for s, _ in buyers]
    )
    return {s.customer_id: triple for (s, _), triple in zip(buyers, scores, strict=True)}


# --------------------------------------------------------------------------- presets


class PresetError(ValueError):
    """A preset that cannot be used, with a message naming the file and rule to fix."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One box of inclusive score ranges and the segment it names.

    ``action`` and ``channel``: the segment's playbook entry, what to do with its customers and
    through which channel (``state.segments.playbook``); both empty when the preset gives none.
    """

    segment: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    description: str = ""
    action: str = ""
    channel: str = ""

    def __post_init__(self) -> None:
        if not self.segment.strip():
            raise PresetError("segment name must be a non-empty string")
        for axis, (lo, hi) in (("r", self.r), ("f", self.f), ("m", self.m)):
            if not MIN_SCORE <= lo <= hi <= MAX_SCORE:
                raise PresetError(
                    f"rule {self.segment!r}: {axis} must be [lo, hi] with {MIN_SCORE} <= lo <= hi <= {MAX_SCORE}, got [{lo}, {hi}]"
                )
        if bool(self.action.strip()) != bool(self.channel.strip()):
            raise PresetError(
                f"rule {self.segment!r}: give both action and channel (the playbook), or neither"
            )

    def matches(self, r: int, f: int, m: int) -> bool:
        """Whether ``(r, f, m)`` lies in this rule's box."""
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


@dataclass(frozen=True, slots=True)
class Preset:
    """An ordered rule table, first match wins; checked to name every one of the 125 triples.

    Rules that no triple reaches (shadowed by earlier ones) are rejected too.
    """

    name: str
    version: int
    description: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not self.rules:
            raise PresetError(f"preset {self.name!r} has no rules")
        names = [rule.segment for rule in self.rules]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise PresetError(f"preset {self.name!r}: segment names must be unique, repeated: {duplicates}")
        first = {t: self._first_match(*t) for t in itertools.product(_ALL_SCORES, repeat=3)}
        if uncovered := [t for t, rule in first.items() if rule is None]:
            raise PresetError(
                f"preset {self.name!r}: {len(uncovered)} score triples match no rule, e.g. {uncovered[:3]}; add a rule for them"
            )
        winners = {rule.segment for rule in first.values() if rule is not None}
        if unreachable := [rule.segment for rule in self.rules if rule.segment not in winners]:
            raise PresetError(
                f"preset {self.name!r}: rules {unreachable} never match first; earlier rules cover all their triples"
            )

    def __hash__(self) -> int:
        """By name and version only: equal presets share both, and the caches that key on a preset
        (a rule's JSON, a playbook entry: several lookups per published change) need not hash every
        rule each time (the generated hash of all fields was 5% of the evaluation process's samples
        on the whole CDNOW history, ``py-spy`` during ``bench/no_ticks.py``, 2026-11-30)."""
        return hash((self.name, self.version))

    def _first_match(self, r: int, f: int, m: int) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(r, f, m)), None)

    @property
    def segments(self) -> tuple[str, ...]:
        """Segment names in rule order."""
        return tuple(rule.segment for rule in self.rules)

    def segment_for(self, r: int, f: int, m: int) -> Rule:
        """The first rule containing ``(r, f, m)``; scores must be 1..5."""
        if not all(MIN_SCORE <= s <= MAX_SCORE for s in (r, f, m)):
            raise ValueError(f"scores must be in {MIN_SCORE}..{MAX_SCORE}, got {(r, f, m)}")
        rule = self._first_match(r, f, m)
        if rule is None:  # unreachable for a validated preset; kept so a bug cannot pass silently
            raise ValueError(f"preset {self.name!r} v{self.version}: no rule matches {(r, f, m)}")
        return rule


def _score_range(value: object, where: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise PresetError(f"{where} must be a list [lo, hi] of two integers, got {value!r}")
    return (value[0], value[1])


def _rule(raw: object, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise PresetError(f"{where} must be an object, got {raw!r}")
    segment = raw.get("segment")
    where = f"{where} ({segment!r})" if isinstance(segment, str) else where
    if missing := sorted(_RULE_KEYS - _OPTIONAL_RULE_KEYS - raw.keys()):
        raise PresetError(f"{where} is missing {missing}")
    if unknown := sorted(raw.keys() - _RULE_KEYS):
        raise PresetError(f"{where} has unknown keys {unknown}; allowed: {sorted(_RULE_KEYS)}")
    description, action, channel = (raw.get(key, "") for key in ("description", "action", "channel"))
    if not isinstance(segment, str) or not all(isinstance(v, str) for v in (description, action, channel)):
        raise PresetError(f"{where}: segment, description, action and channel must be strings")
    r, f, m = (_score_range(raw[axis], f"{where}: {axis}") for axis in ("r", "f", "m"))
    try:
        return Rule(segment, r, f, m, description, action, channel)
    except PresetError as exc:
        raise PresetError(f"{where}: {exc}") from None


def parse_preset(data: object, source: str = "preset") -> Preset:
    """Build a preset from decoded JSON; errors start with ``source`` and name the rule."""
    if not isinstance(data, dict):
        raise PresetError(f"{source}: the top level must be an object, got {type(data).__name__}")
    if missing := sorted(_PRESET_KEYS - data.keys()):
        raise PresetError(f"{source}: missing {missing}")
    if unknown := sorted(data.keys() - _PRESET_KEYS):
        raise PresetError(f"{source}: unknown keys {unknown}; allowed: {sorted(_PRESET_KEYS)}")
    name, version, description, rules = (data[k] for k in ("name", "version", "description", "rules"))
    if not isinstance(name, str) or not name.strip():
        raise PresetError(f"{source}: name must be a non-empty string, got {name!r}")
    if type(version) is not int or version < 1:
        raise PresetError(f"{source}: version must be an integer >= 1, got {version!r}")
    if not isinstance(description, str):
        raise PresetError(f"{source}: description must be a string, got {description!r}")
    if not isinstance(rules, list) or not rules:
        raise PresetError(f"{source}: rules must be a non-empty list")
    parsed = tuple(_rule(raw, f"{source}: rules[{i}]") for i, raw in enumerate(rules))
    try:
        return Preset(name, version, description, parsed)
    except PresetError as exc:
        raise PresetError(f"{source}: {exc}") from None


def load_preset_file(path: str | Path) -> Preset:
    """Load and validate a preset from a JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path}: cannot read preset: {exc}") from None
    return parse_preset(data, source=str(path))


def _preset_dir() -> Traversable:
    return resources.files("state.segments").joinpath("presets")


def available_presets() -> list[str]:
    """Names of the presets shipped in ``state/segments/presets``."""
    return sorted(p.name.removesuffix(".json") for p in _preset_dir().iterdir() if p.name.endswith(".json"))


def load_preset(name: str = "rfm11") -> Preset:
    """A shipped preset by name (the 11-segment scheme by default)."""
    if name not in (shipped := available_presets()):
        raise PresetError(f"unknown preset {name!r}; shipped presets: {shipped}")
    text = _preset_dir().joinpath(f"{name}.json").read_text(encoding="utf-8")
    preset = parse_preset(json.loads(text), source=f"preset {name}.json")
    if preset.name != name:
        raise PresetError(f"preset {name}.json declares name {preset.name!r}; make them equal")
    return preset
