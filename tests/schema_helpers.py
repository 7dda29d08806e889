"""Validate messages against the wire-contract JSON Schemas in ``schemas/``.

Integration tests use this to check real Kafka messages::

    from tests.schema_helpers import validate, validate_json

    validate("purchase", {"event_id": "e-1", ...})     # a decoded JSON value
    value = validate_json("purchase-dlq", msg.value)   # raw bytes from Kafka

``name`` is the file name without ``.schema.json``: "purchase", "purchase-dlq", ...
Both functions raise :class:`jsonschema.ValidationError` on an invalid instance.

Two deliberate differences from a bare ``Draft202012Validator``:

* ``multipleOf`` is evaluated exactly in decimal. jsonschema divides binary floats, so
  ``19.99`` fails ``multipleOf: 0.01`` there; here a float is taken at its shortest
  round-trip decimal text (``repr``), i.e. the number as it was written in the JSON.
* NaN and +/-Infinity are rejected anywhere: they are not JSON, although Python's
  ``json.loads`` accepts them by default.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

__all__ = ["SCHEMA_DIR", "load_schema", "schema_path", "validate", "validate_json", "validator_for"]


def schema_path(name: str) -> Path:
    """Path of the schema file for ``name`` (e.g. "purchase" -> schemas/purchase.schema.json)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad schema name {name!r}: use e.g. 'purchase' or 'purchase-dlq'")
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))
        raise FileNotFoundError(f"no schema {name!r} ({path}); known: {known}")
    return path


def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema; a fresh copy on every call, so callers may modify it."""
    schema: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return schema


def _exact(number: Any) -> Fraction:
    if isinstance(number, float):
        return Fraction(repr(number))  # shortest round-trip decimal; ValueError for nan/inf
    return Fraction(number)


def _exact_multiple_of(
    validator: Any, divisor: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "number"):
        return
    try:
        failed = (_exact(instance) / _exact(divisor)).denominator != 1
    except (ValueError, OverflowError):
        failed = True
    if failed:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor!r}")


_ExactValidator = extend(Draft202012Validator, validators={"multipleOf": _exact_multiple_of})


@cache
def validator_for(name: str) -> Draft202012Validator:
    """A draft 2020-12 validator with a FormatChecker and exact decimal ``multipleOf``."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    validator: Draft202012Validator = _ExactValidator(schema, format_checker=FormatChecker())
    return validator


def _non_finite(instance: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    if isinstance(instance, float):
        return None if math.isfinite(instance) else path
    if isinstance(instance, dict):
        items: Any = instance.items()
    elif isinstance(instance, list | tuple):
        items = enumerate(instance)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, (*path, key))
        if found is not None:
            return found
    return None


def validate(name: str, instance: object) -> None:
    """Raise ValidationError unless ``instance`` (a decoded JSON value) is valid for schema ``name``."""
    bad = _non_finite(instance)
    if bad is not None:
        where = "/".join(str(part) for part in bad) or "(root)"
        raise ValidationError(f"{where}: NaN and Infinity are not JSON numbers", path=bad)
    validator_for(name).validate(instance)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def validate_json(name: str, raw: bytes | str) -> Any:
    """Decode a raw message value (UTF-8 JSON), validate it and return the decoded value."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValidationError(f"not a UTF-8 JSON document: {exc}") from exc
    validate(name, value)
    return value
