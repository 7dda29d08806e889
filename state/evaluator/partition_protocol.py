"""Partitioned evaluation as messages: the owner's side and a partition host's side of each instant.

Stage three of the partitioned evaluation (``docs/design-notes.md``) runs the model owner and each
partition evaluator where Kafka puts them, so what :class:`~state.evaluator.partitioned.
PartitionedEvaluator` does in a loop happens here in answer to messages, one instant at a time:

1. the owner sends :class:`Advance` (instant ``E``) to every host;
2. each host folds its customers' states due at ``E`` and answers with its
   :class:`~state.evaluator.partition_messages.StateDelta`;
3. with every partition's delta the owner learns and answers with the
   :class:`~state.evaluator.partition_messages.Versions` of ``E``;
4. each host re-scores, predicts and alerts, keeps its changes and alerts to publish, and answers
   with :class:`Applied` (the rows it wrote and what its gates held back);
5. with every partition's :class:`Applied` the owner runs the steps that read profiles, then
   sends the next instant's :class:`Advance`.

The instants come in chunks (a tick's catch-up over years is evaluated a chunk at a time): the
owner opens each with a :class:`Chunk` naming its instants and the agenda scores it covers, from
which a host reads its customers' logs before the chunk's first :class:`Advance`
(:meth:`HostSide.begin`). When every partition applied the chunk's last instant, the owner saves
and sends :class:`Saved` (:meth:`OwnerSide.close`); each host then publishes, saves its rows and
takes its agenda entries out (:meth:`HostSide.closes`), and answers :class:`Closed`; the next
chunk begins when every partition closed this one. So a host is never more than one save behind
the owner, which a restart catches up from the owner's versions log.

A transport may deliver a message twice and interleave the partitions' messages in any order, as
long as each recipient sees one sender's messages in the order they were sent (one Kafka
partition per sender): the owner counts one delta and one :class:`Applied` per partition and
instant and ignores copies; a host answers a copy of the last message it acted on with the same
answer again and ignores older ones; anything else out of order is a :class:`ProtocolError`.
The two sides are pure (no I/O); :func:`encode` and :func:`decode` give a message's bytes on the
wire. ``tests/unit/test_partition_protocol.py`` runs them through a bus that reorders and repeats,
every message through its bytes, against the one evaluator.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from state.customer.profiles import Change
from state.customer.rfm import CustomerState
from state.evaluator.instants import chunk_targets
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import RowUpdates, StateDelta, Versions
from state.models.alerts import Alert
from streams.campaign_contract import CampaignEvent

__all__ = [
    "Advance",
    "Applied",
    "Chunk",
    "Closed",
    "HostSide",
    "Message",
    "OwnerSide",
    "ProtocolError",
    "Saved",
    "cut_chunks",
    "decode",
    "encode",
]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Owner -> every host: the next instants are ``instants``, and the agenda entries they
    evaluate are those scored in (``after_ms``, ``up_to_ms``] (``after_ms`` None: from the first)."""

    up_to_ms: int
    after_ms: int | None
    instants: tuple[int, ...]


def cut_chunks(instants: Sequence[int], to_ms: int, steps: int) -> list[Chunk]:
    """The chunks of an advance up to ``to_ms``: ``steps`` instants each, as the one evaluator's
    (``agents.evaluator``); the first reads every entry due up to its end (late ones too).

    >>> cut_chunks([10, 20, 25], 25, 2)
    [Chunk(up_to_ms=20, after_ms=None, instants=(10, 20)), Chunk(up_to_ms=25, after_ms=20, instants=(25,))]
    """
    chunks, after, rest = [], None, list(instants)
    for target in chunk_targets(instants, to_ms, steps):
        mine = [at for at in rest if at <= target]
        chunks.append(Chunk(target, after, tuple(mine)))
        rest, after = rest[len(mine) :], target
    return chunks


@dataclass(frozen=True, slots=True)
class Advance:
    """Owner -> every host: fold the states due at instant ``at_ms``."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Applied:
    """Host -> owner: partition ``partition`` applied the versions of ``at_ms``: the rows it wrote,
    and how many alerts of each kind its gates held back (for the owner's summary)."""

    partition: int
    at_ms: int
    updates: RowUpdates
    held_back: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Saved:
    """Owner -> every host: the owner saved at the end of the chunk up to ``up_to_ms``."""

    up_to_ms: int


@dataclass(frozen=True, slots=True)
class Closed:
    """Host -> owner: partition ``partition`` published (``changes`` and ``alerts`` of the chunk),
    saved and took out its entries of the chunk up to ``up_to_ms``."""

    partition: int
    up_to_ms: int
    changes: int = 0
    alerts: int = 0


Message = Chunk | Advance | StateDelta | Versions | Applied | Saved | Closed
_KINDS = (Chunk, Advance, StateDelta, Versions, Applied, Saved, Closed)


class ProtocolError(RuntimeError):
    """A message no run of the protocol sends at that point (a bug or a host out of step)."""


def encode(message: Message) -> bytes:
    """A message's bytes on the wire (a pickle: only segstream's own processes read them)."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> Message:
    """The message :func:`encode` made of ``data``."""
    message = pickle.loads(data)
    if not isinstance(message, _KINDS):
        raise ProtocolError(f"not a partition protocol message: {type(message).__name__}")
    return message


class OwnerSide:
    """The model owner's side over the instants of one chunk (its clock moves with each)."""

    def __init__(
        self,
        owner: ModelOwner,
        partitions: int,
        chunk: Chunk,
        campaign_events: Mapping[int, Sequence[CampaignEvent]] | None = None,
    ) -> None:
        self.owner = owner
        self._partitions = partitions
        self.chunk = chunk
        self._instants = list(chunk.instants)
        self._campaign_events = campaign_events or {}
        self._next = 0  # index of the instant in progress
        self._deltas: dict[int, StateDelta] = {}
        self._versions: Versions | None = None  # of the instant in progress, once decided
        self._applied: dict[int, Applied] = {}
        self._saved = False
        self._closed: dict[int, Closed] = {}
        self.alerts: list[Alert] = []
        """The drift alerts raised so far (the hosts raise the customers' alerts)."""

    def start(self) -> list[Message]:
        """The :class:`Chunk` and its first instant's :class:`Advance` (nothing when it has no instant)."""
        return [self.chunk, Advance(self._instants[0])] if self._instants else []

    @property
    def done(self) -> bool:
        """Every instant evaluated everywhere."""
        return self._next >= len(self._instants)

    def close(self) -> list[Message]:
        """The owner saved (every instant done): the :class:`Saved` to send."""
        if not self.done:
            raise ProtocolError(f"chunk up to {self.chunk.up_to_ms} saved before its last instant")
        self._saved = True
        return [Saved(self.chunk.up_to_ms)] if self._instants else []

    @property
    def closed(self) -> bool:
        """Every partition closed the chunk (or it had no instant)."""
        return not self._instants or len(self._closed) == self._partitions

    def waiting_for(self) -> list[int]:
        """The partitions whose answer to the step in progress has not arrived."""
        if self._saved:
            answered: Mapping[int, object] = self._closed
        else:
            answered = self._deltas if self._versions is None else self._applied
        return [p for p in range(self._partitions) if p not in answered]

    def receive(self, message: Message) -> list[Message]:
        """Take one host's message; return what to send to every host (maybe nothing)."""
        if isinstance(message, Closed):
            return self._closed_at(message)
        if self.done:
            return []
        at_ms = self._instants[self._next]
        if isinstance(message, StateDelta):
            return self._delta(at_ms, message)
        if isinstance(message, Applied):
            return self._applied_at(at_ms, message)
        raise ProtocolError(f"the owner does not take {type(message).__name__}")

    def _delta(self, at_ms: int, delta: StateDelta) -> list[Message]:
        if delta.at_ms < at_ms or self._versions is not None:
            return []  # a copy of a delta already counted
        if delta.at_ms > at_ms:
            raise ProtocolError(f"partition {delta.partition} folded {delta.at_ms} before {at_ms}")
        self._deltas.setdefault(delta.partition, delta)
        if len(self._deltas) < self._partitions:
            return []
        deltas = [self._deltas[p] for p in range(self._partitions)]
        self._versions = self.owner.state_step(at_ms, deltas)
        return [self._versions]

    def _applied_at(self, at_ms: int, applied: Applied) -> list[Message]:
        if applied.at_ms < at_ms:
            return []  # a copy of the instant before
        if applied.at_ms > at_ms or self._versions is None:
            raise ProtocolError(f"partition {applied.partition} applied {applied.at_ms} before its versions")
        self._applied.setdefault(applied.partition, applied)
        if len(self._applied) < self._partitions:
            return []
        ordered = [self._applied[p] for p in range(self._partitions)]
        for part in ordered:  # the owner's summary and snapshot count every partition's
            self.owner.held_back.update(dict(part.held_back))
        events = self._campaign_events.get(at_ms, ())
        self.alerts += self.owner.profile_step(at_ms, [a.updates for a in ordered], events)
        self._next += 1
        self._deltas, self._versions, self._applied = {}, None, {}
        return [] if self.done else [Advance(self._instants[self._next])]

    def _closed_at(self, closed: Closed) -> list[Message]:
        up_to = self.chunk.up_to_ms
        if closed.up_to_ms < up_to:
            return []  # a copy of a chunk before
        if closed.up_to_ms > up_to or not self._saved:
            raise ProtocolError(f"partition {closed.partition} closed {closed.up_to_ms} before it was saved")
        self._closed.setdefault(closed.partition, closed)
        return []

    @property
    def published(self) -> tuple[int, int]:
        """The changes and alerts the partitions published at the chunk's end (as they said)."""
        closed = self._closed.values()
        return sum(c.changes for c in closed), sum(c.alerts for c in closed)


class HostSide:
    """One partition evaluator's side: ``states_at(E)`` gives its customers' states due at ``E``
    in the chunk begun last (:meth:`begin`)."""

    def __init__(
        self,
        evaluator: PartitionEvaluator,
        states_at: Callable[[int], Sequence[CustomerState]] = lambda at_ms: (),
    ) -> None:
        self.evaluator = evaluator
        self.states_at = states_at
        self._chunk: Chunk | None = None  # the last chunk begun
        self._closed_up_to: int | None = None  # the end of the last chunk closed
        self._folded: StateDelta | None = None  # the last instant folded
        self._applied: Applied | None = None  # the last instant applied
        self.changes: list[Change] = []
        """The changes to publish, in the order they were made."""

    def begin(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` is new (after the last one begun; not a copy): then it is the chunk
        in progress, and the caller sets :attr:`states_at` to its states before the next message."""
        last = self._chunk
        if last is not None and chunk.up_to_ms <= last.up_to_ms:
            return False
        if last is not None and self._closed_up_to != last.up_to_ms:
            raise ProtocolError(f"chunk up to {chunk.up_to_ms} begun before {last.up_to_ms} closed")
        self._chunk = chunk
        return True

    def closes(self, saved: Saved) -> bool:
        """Whether ``saved`` closes the chunk in progress: the caller then publishes its changes and
        alerts, saves its rows and takes its entries out, and answers :class:`Closed`. False for a
        copy of a chunk closed already (answer :class:`Closed` again: the owner may not have it)."""
        chunk, applied = self._chunk, self._applied
        if self._closed_up_to is not None and saved.up_to_ms <= self._closed_up_to:
            return False
        if chunk is None or saved.up_to_ms != chunk.up_to_ms:
            raise ProtocolError(f"saved up to {saved.up_to_ms}, not the chunk in progress")
        if applied is None or applied.at_ms != chunk.instants[-1]:
            raise ProtocolError(f"saved up to {saved.up_to_ms} before its last instant was applied")
        self._closed_up_to = saved.up_to_ms
        return True

    def receive(self, message: Message) -> list[Message]:
        """Take one owner's message; return what to send to the owner (maybe nothing).
        A :class:`Chunk` goes to :meth:`begin`."""
        if isinstance(message, Advance):
            return self._advance(message.at_ms)
        if isinstance(message, Versions):
            return self._versions(message)
        raise ProtocolError(f"a host does not take {type(message).__name__}")

    def _advance(self, at_ms: int) -> list[Message]:
        folded, applied = self._folded, self._applied
        if folded is not None:
            if at_ms == folded.at_ms:
                return [folded]  # the owner may not have it: the same again
            if at_ms < folded.at_ms:
                return []  # a copy of an instant long done
            if applied is None or applied.at_ms != folded.at_ms:
                raise ProtocolError(f"advance to {at_ms} before the versions of {folded.at_ms}")
        if self._chunk is None or at_ms not in self._chunk.instants:
            raise ProtocolError(f"advance to {at_ms}, not an instant of the chunk begun")
        self._folded = self.evaluator.fold(at_ms, self.states_at(at_ms))
        return [self._folded]

    def _versions(self, versions: Versions) -> list[Message]:
        applied = self._applied
        if applied is not None and versions.at_ms <= applied.at_ms:
            return [applied] if versions.at_ms == applied.at_ms else []
        if self._folded is None or versions.at_ms != self._folded.at_ms:
            raise ProtocolError(f"versions of {versions.at_ms} before its advance")
        changes, updates = self.evaluator.apply(versions)
        self.changes += changes
        held = self.evaluator.held_back
        self._applied = Applied(
            self.evaluator.partition, versions.at_ms, updates, tuple(sorted(held.items()))
        )
        held.clear()
        return [self._applied]

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call (:meth:`PartitionEvaluator.take_alerts`)."""
        return self.evaluator.take_alerts()
