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
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import RowUpdates, StateDelta, Versions
from state.models.alerts import Alert
from streams.campaign_contract import CampaignEvent

__all__ = ["Advance", "Applied", "HostSide", "Message", "OwnerSide", "ProtocolError", "decode", "encode"]


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


Message = Advance | StateDelta | Versions | Applied
_KINDS = (Advance, StateDelta, Versions, Applied)


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
    """The model owner's side over the instants of one advance (its clock moves with each)."""

    def __init__(
        self,
        owner: ModelOwner,
        partitions: int,
        instants: Sequence[int],
        campaign_events: Mapping[int, Sequence[CampaignEvent]] | None = None,
    ) -> None:
        self.owner = owner
        self._partitions = partitions
        self._instants = list(instants)
        self._campaign_events = campaign_events or {}
        self._next = 0  # index of the instant in progress
        self._deltas: dict[int, StateDelta] = {}
        self._versions: Versions | None = None  # of the instant in progress, once decided
        self._applied: dict[int, Applied] = {}
        self.alerts: list[Alert] = []
        """The drift alerts raised so far (the hosts raise the customers' alerts)."""

    def start(self) -> list[Message]:
        """The first instant's :class:`Advance` (nothing when there is no instant)."""
        return [Advance(self._instants[0])] if self._instants else []

    @property
    def done(self) -> bool:
        """Every instant evaluated everywhere."""
        return self._next >= len(self._instants)

    def receive(self, message: Message) -> list[Message]:
        """Take one host's message; return what to send to every host (maybe nothing)."""
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


class HostSide:
    """One partition evaluator's side: ``states_at(E)`` gives its customers' states due at ``E``."""

    def __init__(
        self, evaluator: PartitionEvaluator, states_at: Callable[[int], Sequence[CustomerState]]
    ) -> None:
        self.evaluator = evaluator
        self._states_at = states_at
        self._folded: StateDelta | None = None  # the last instant folded
        self._applied: Applied | None = None  # the last instant applied
        self.changes: list[Change] = []
        """The changes to publish, in the order they were made."""

    def receive(self, message: Message) -> list[Message]:
        """Take one owner's message; return what to send to the owner (maybe nothing)."""
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
        self._folded = self.evaluator.fold(at_ms, self._states_at(at_ms))
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
