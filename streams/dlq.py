"""Dead letters: the ``purchases.dlq`` message for an event that broke the contract.

Schema: ``schemas/purchase-dlq.schema.json``. A per-partition fence in the store
keeps redelivered bad messages out; a crash between Kafka's ack and the fence write
can still repeat one, so subscribers that must be exact deduplicate on
``source.topic/partition/offset``.

>>> import json
>>> from datetime import datetime, UTC
>>> msg = json.loads(dead_letter(b"{oops", b"c1", "not JSON", "purchases", 0, 7,
...                              datetime(2026, 1, 1, tzinfo=UTC)))
>>> msg["reason"], msg["source"], msg["payload"]
('not JSON', {'topic': 'purchases', 'partition': 0, 'offset': 7, 'key': 'c1'}, '{oops')
"""

from __future__ import annotations

import base64
from datetime import datetime

import msgspec

__all__ = ["SCHEMA_VERSION", "dead_letter"]

SCHEMA_VERSION = 1


def dead_letter(
    value: bytes | None,
    key: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at: datetime,
) -> bytes:
    """Encode the DLQ message for one rejected source message."""
    payload, encoding = _as_text(value or b"")
    return msgspec.json.encode(
        {
            "schema_version": SCHEMA_VERSION,
            "reason": reason,
            "source": {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "key": key.decode("utf-8", errors="replace") if key is not None else None,
            },
            "payload": payload,
            "payload_encoding": encoding,
            "failed_at": failed_at.isoformat(),
        }
    )


def _as_text(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
