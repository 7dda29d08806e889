"""One chunk of the evaluator's input read from the store: the agenda entries due, their customers' logs.

The one evaluator reads every partition's entries per chunk of instants (``agents.evaluator``); a
partition's host in stage three of the partitioned evaluation reads its own partition's alone
(``partition``), the same way: the entries in (``after_ms``, ``up_to_ms``], then the logs of their
customers (the compacted base and the events after it), which is what ``Evaluator.advance`` and a
partition evaluator's folds take.
"""

from __future__ import annotations

from dataclasses import dataclass

from state.customer.event_log import LogBase, LogEntry
from state.customer.store import AgendaEntry, CustomerStore, parse_agenda_member

__all__ = ["DueChunk", "read_due"]


@dataclass(frozen=True, slots=True)
class DueChunk:
    """The agenda entries of a chunk and the logs of the customers they name."""

    entries: list[AgendaEntry]
    customers: list[str]  # sorted
    logs: dict[str, list[LogEntry]]
    bases: dict[str, LogBase]


async def read_due(
    store: CustomerStore, up_to_ms: int, after_ms: int | None, *, partition: int | None = None
) -> DueChunk:
    """The entries in (``after_ms``, ``up_to_ms``] (only ``partition``'s when given) and their logs."""
    entries = await store.due(up_to_ms, after_ms=after_ms, partition=partition)
    customers = sorted({parse_agenda_member(member) for member, _ in entries})
    chunk = await store.logs(customers)
    return DueChunk(
        entries,
        customers,
        {c: log.entries for c, log in chunk.items()},
        {c: log.base for c, log in chunk.items() if log.base is not None},
    )
