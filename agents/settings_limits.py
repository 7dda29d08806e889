"""The bounds every input is checked against: the input-limits part of :class:`agents.settings.Settings`."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

from streams.limits import InputLimits

__all__ = ["InputLimitSettings"]


class InputLimitSettings(BaseModel):
    """Sizes, nesting and the accepted event-time window (``streams.limits``; README, hostile input)."""

    max_message_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="largest message value accepted; a larger one is dead-lettered unread",
    )
    max_string_length: int = Field(
        200, ge=1, description="longest id or string field (event_id, customer_id, order_id, sku, ...)"
    )
    max_items: int = Field(1000, ge=0, description="most basket lines (items) in one purchase")
    max_nesting_depth: int = Field(
        32, ge=3, le=1000, description="deepest JSON nesting accepted (a purchase needs 3 levels)"
    )
    event_time_floor: datetime = Field(
        datetime(1990, 1, 1, tzinfo=UTC),
        description="earliest accepted event time (before any real history: an epoch in seconds lands in 1970)",
    )
    max_clock_skew_s: float = Field(
        3600.0, ge=0, description="latest accepted event time or tick: the wall clock at receipt plus this"
    )
    dlq_payload_bytes: int = Field(
        4096, ge=0, le=65536, description="bytes of a rejected payload kept in its dead letter"
    )

    @field_validator("event_time_floor")
    @classmethod
    def _floor_is_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("event_time_floor needs an offset, e.g. 1990-01-01T00:00:00Z")
        return value

    def input_limits(self) -> InputLimits:
        """The bounds every input is checked against (``streams.limits``)."""
        return InputLimits(
            max_message_bytes=self.max_message_bytes,
            max_string_length=self.max_string_length,
            max_items=self.max_items,
            floor_ms=int(self.event_time_floor.timestamp() * 1000),
            max_skew_ms=round(self.max_clock_skew_s * 1000),
            dlq_payload_bytes=self.dlq_payload_bytes,
            max_depth=self.max_nesting_depth,
        )
