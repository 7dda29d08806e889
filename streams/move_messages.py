"""The ``segment-moves`` messages: one per audience entry or exit (``state.moves``), key = customer_id.

Schema: ``schemas/segment-move.schema.json``; AsyncAPI: ``docs/asyncapi.yaml``. Published by the
evaluator next to the ``segment-changes`` they are derived from, in the same order.

>>> from state.moves import Audience, Move
>>> move = Move("exited", Audience("segment", "Champions", "segment:Champions"), "c1", 0, ("recency_decay",), "c1@0", None)
>>> move_message(move)[:80]
b'{"schema_version":1,"move_id":"c1@0:exited:segment:Champions","type":"exited","a'
"""

from __future__ import annotations

import msgspec

from state.moves import Move
from streams.outputs import SCHEMA_VERSION, rfc3339

__all__ = ["move_message"]

_encode = msgspec.json.Encoder().encode


def move_message(move: Move) -> bytes:
    """The ``segment-moves`` value of one move."""
    audience = move.audience
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "move_id": move.move_id,
            "type": move.type,
            "audience": {"kind": audience.kind, "name": audience.name, "id": audience.id},
            "customer_id": move.customer_id,
            "as_of": rfc3339(move.at_ms),
            "reasons": list(move.reasons),
            "change_id": move.change_id,
            "recommended_action": None
            if move.recommended_action is None
            else move.recommended_action.to_json(),
        }
    )
