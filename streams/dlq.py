"""Dead letters: the ``<topic>.dlq`` message for an input that broke its contract.

Schema: ``schemas/purchase-dlq.schema.json`` (the same shape serves ``purchases.dlq``,
``campaign-events.dlq`` and ``clock.dlq``). A dead letter always fits the producer's limit,
whatever came in: the raw payload is cut to ``payload_limit`` bytes (``payload_truncated``
says so), its full size and SHA-256 are kept, and the reason and key are cut short too.

A per-partition fence in the store keeps redelivered bad messages out; a crash between
Kafka's ack and the fence write can still repeat one, so subscribers that must be exact
deduplicate on ``source.topic/partition/offset``.

>>> import json
>>> from datetime import datetime, UTC
>>> msg = json.loads(dead_letter(b"{oops", b"c1", "not JSON", "purchases", 0, 7,
...                              datetime(2026, 1, 1, tzinfo=UTC)))
>>> msg["reason"], msg["source"], msg["payload"], msg["payload_size"], msg["payload_truncated"]
('not JSON', {'topic': 'purchases', 'partition': 0, 'offset': 7, 'key': 'c1'}, '{oops', 5, False)
>>> big = json.loads(dead_letter(b"\\xff" * 900_000, None, "payload: too big", "purchases", 0, 8,
...                              datetime(2026, 1, 1, tzinfo=UTC), payload_limit=6))
>>> big["payload"], big["payload_encoding"], big["payload_size"], big["payload_truncated"]
('////////', 'base64', 900000, True)
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import msgspec

__all__ = ["KEY_LIMIT", "REASON_LIMIT", "SCHEMA_VERSION", "dead_letter", "dead_letter_key"]

SCHEMA_VERSION = 1
REASON_LIMIT = 1000  # characters of the reason kept
KEY_LIMIT = 1024  # bytes of the source key kept (in the value and as the dead letter's own key)


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's Kafka key: the source key, cut to ``KEY_LIMIT`` bytes."""
    return None if key is None else key[:KEY_LIMIT]


def dead_letter(
    value: bytes | None,
    key: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at: datetime,
    payload_limit: int = 4096,
) -> bytes:
    """Encode the DLQ message for one rejected source message (at most a few KB, whatever came in)."""
    raw = value or b""
    payload, encoding = _as_text(raw[:payload_limit])
    short_key = dead_letter_key(key)
    return msgspec.json.encode(
        {
            "schema_version": SCHEMA_VERSION,
            "reason": reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…",
            "source": {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "key": short_key.decode("utf-8", errors="replace") if short_key is not None else None,
            },
            "payload": payload,
            "payload_encoding": encoding,
            "payload_size": len(raw),
            "payload_sha256": hashlib.sha256(raw).hexdigest(),
            "payload_truncated": len(raw) > payload_limit,
            "failed_at": failed_at.isoformat(),
        }
    )


def _as_text(raw: bytes) -> tuple[str, str]:
    """UTF-8 text if ``raw`` is UTF-8 (a character cut at the end by truncation is dropped), else base64."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return raw[: exc.start].decode("utf-8"), "utf-8"
        return base64.b64encode(raw).decode("ascii"), "base64"
