"""Every topic segstream reads or writes, in one place (logical names; see Settings.topic)."""

from __future__ import annotations

__all__ = ["ALL_TOPICS", "PURCHASES", "PURCHASES_DLQ"]

PURCHASES = "purchases"
PURCHASES_DLQ = "purchases.dlq"

ALL_TOPICS = (PURCHASES, PURCHASES_DLQ)
