"""The in-memory customer store: the reference behaviour of the port, and the unit tests' store.

:class:`MemoryStore` implements ``state.customer.store.CustomerStore`` with dicts; the Redis store
(``state.adapters.redis_store``) must behave exactly like it, and
``tests/integration/test_store_contract.py`` runs the same contract against both. Kept apart from
the port so that the port module holds only what every implementation shares (the fences, the
agenda, the outcomes), and this one the reference semantics in plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from state.customer.event_log import CustomerLog, LogBase, LogEntry, compact
from state.customer.partitions import customer_partition
from state.customer.rfm import CustomerState, apply, purchase_day
from state.customer.store import (
    AgendaEntry,
    Delivery,
    Outcome,
    Partition,
    Stats,
    TopicReset,
    agenda_member,
    fence_field,
    highest_per_key,
    log_entry,
    parse_agenda_member,
)

__all__ = ["MemoryStore"]


@dataclass
class MemoryStore:
    """A dict-backed store for unit tests and as the reference behaviour."""

    states: dict[str, CustomerState] = field(default_factory=dict)
    fences: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    days: dict[str, set[int]] = field(default_factory=dict)
    partition_watermarks: dict[int, int] = field(default_factory=dict)
    letter_fences: dict[Partition, int] = field(default_factory=dict)
    totals: Stats = field(default_factory=Stats)
    event_logs: dict[str, set[LogEntry]] = field(default_factory=dict)
    log_bases: dict[str, LogBase] = field(default_factory=dict)
    agenda: dict[str, int] = field(default_factory=dict)
    next_offsets: dict[Partition, int] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    resets: list[TopicReset] = field(default_factory=list)
    receipts: dict[str, int] = field(default_factory=dict)
    counters: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    """``(table, customer or None for a shared table) -> field -> count``."""
    partitions: int = 4
    """The evaluation partitions it reports (its agenda is one dict: nothing is cut by them)."""

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes = [self._apply_one(d) for d in deliveries]
        for d in deliveries:
            member = agenda_member(d.event.customer_id, d.event.event_id)
            self.agenda[member] = d.event.occurred_at_ms + 1
            if d.received_ms is not None:
                self.receipts.setdefault(member, d.received_ms)
        batch = highest_per_key((d.partition, d.event.occurred_at_ms) for d in deliveries)
        self.partition_watermarks = highest_per_key([*self.partition_watermarks.items(), *batch.items()])
        self.totals.count(outcomes)
        return outcomes

    def _apply_one(self, d: Delivery) -> Outcome:
        customer = d.event.customer_id
        fence_key = (customer, fence_field(d.topic, d.partition, self.epochs.get(d.topic, 0)))
        if d.offset <= self.fences.get(fence_key, -1):
            return Outcome.REDELIVERED
        self.fences[fence_key] = d.offset
        ids = self.seen.setdefault(customer, set())
        if d.event.event_id in ids:
            return Outcome.DUPLICATE
        ids.add(d.event.event_id)
        day = purchase_day(d.event.occurred_at_ms)
        days = self.days.setdefault(customer, set())
        new_day = d.event.type == "purchase" and day not in days
        if new_day:
            days.add(day)
        before = self.states.get(customer)
        self.states[customer] = apply(before, d.event, new_purchase_day=new_day)
        base = self.log_bases.get(customer)
        if base is not None and d.event.occurred_at_ms < base.before_ms:
            self.log_bases[customer] = base.add(log_entry(d.event), new_purchase_day=new_day)
        else:
            self.event_logs.setdefault(customer, set()).add(log_entry(d.event))
        for t in d.tallies:
            table = self.counters.setdefault((t.table, customer if t.per_customer else None), {})
            table[t.field] = table.get(t.field, 0) + t.delta
        return Outcome.NEW_CUSTOMER if before is None else Outcome.APPLIED

    async def dead_letter_fences(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {tp: self.letter_fences.get(tp, -1) for tp in partitions}

    async def record_dead_letters(self, last_offsets: Mapping[Partition, int], count: int) -> None:
        self.letter_fences = highest_per_key([*self.letter_fences.items(), *last_offsets.items()])
        self.totals.invalid += count

    async def get(self, customer_id: str) -> CustomerState | None:
        return self.states.get(customer_id)

    async def current_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        return {c: self.states[c] for c in customer_ids if c in self.states}

    async def all_customers(self) -> list[CustomerState]:
        return list(self.states.values())

    async def eval_partitions(self) -> int:
        return self.partitions

    async def watermark(self) -> int | None:
        return max(self.partition_watermarks.values(), default=None)

    async def watermarks(self) -> dict[int, int]:
        return dict(self.partition_watermarks)

    async def stats(self) -> Stats:
        return replace(self.totals)

    async def record_consumed(self, next_offsets: Mapping[Partition, int]) -> None:
        self.next_offsets = highest_per_key([*self.next_offsets.items(), *next_offsets.items()])

    async def consumed(self, topic: str) -> dict[int, int]:
        return {p: offset for (t, p), offset in self.next_offsets.items() if t == topic}

    async def due(
        self, up_to_ms: int, after_ms: int | None = None, *, partition: int | None = None
    ) -> list[AgendaEntry]:
        if partition is not None and not 0 <= partition < self.partitions:
            raise ValueError(f"no evaluation partition {partition} of {self.partitions}")
        return sorted(
            (
                (m, s)
                for m, s in self.agenda.items()
                if s <= up_to_ms
                and (after_ms is None or after_ms < s)
                and (
                    partition is None
                    or customer_partition(parse_agenda_member(m), self.partitions) == partition
                )
            ),
            key=lambda e: (e[1], e[0]),
        )

    async def earliest_due(self, up_to_ms: int) -> int | None:
        return min((s for s in self.agenda.values() if s <= up_to_ms), default=None)

    async def done(self, entries: Sequence[AgendaEntry]) -> None:
        for member, _ in entries:
            self.agenda.pop(member, None)
            self.receipts.pop(member, None)

    async def received(self, members: Sequence[str]) -> dict[str, int]:
        return {m: self.receipts[m] for m in members if m in self.receipts}

    async def logs(self, customer_ids: Iterable[str]) -> dict[str, CustomerLog]:
        return {
            c: CustomerLog(self.log_bases.get(c), sorted(self.event_logs.get(c, ()))) for c in customer_ids
        }

    async def compact(self, customer_ids: Iterable[str], before_ms: int) -> int:
        folded = 0
        for c in customer_ids:
            entries = self.event_logs.get(c, set())
            base, rest = compact(c, self.log_bases.get(c), list(entries), before_ms)
            if base is not None:
                self.log_bases[c] = base
            folded += len(entries) - len(rest)
            self.event_logs[c] = set(rest)
        return folded

    async def tally(self, table: str, customer_id: str | None = None) -> dict[str, int]:
        return dict(self.counters.get((table, customer_id), {}))

    async def tallies(self, table: str, customer_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        return {c: dict(self.counters.get((table, c), {})) for c in customer_ids}

    async def fence_epoch(self, topic: str) -> int:
        return self.epochs.get(topic, 0)

    async def reset_topic(self, reset: TopicReset) -> bool:
        if self.epochs.get(reset.topic, 0) != reset.epoch - 1:
            return False
        self.epochs[reset.topic] = reset.epoch
        self.next_offsets = {tp: o for tp, o in self.next_offsets.items() if tp[0] != reset.topic}
        self.letter_fences = {tp: o for tp, o in self.letter_fences.items() if tp[0] != reset.topic}
        self.resets.append(reset)
        return True

    async def topic_resets(self) -> list[TopicReset]:
        return list(self.resets)
