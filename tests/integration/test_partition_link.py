"""The partitioned evaluation over a real Kafka broker: owner and four hosts that share nothing but
the topics and the store publish the one evaluator's changes and alerts and save its profiles.

Each host reads only its own partition from Redis (single node and the 3-master cluster), talks
to the owner only through ``eval-versions`` / ``eval-deltas`` (``agents.partition_link``, frames
of 4 kB so that the larger messages cross the broker in many records), and at the end of each
chunk publishes, saves its rows and takes its entries out after the owner's save. Half way, one
host's reader and the owner's go back (a consumer resuming from an older offset): the copies
change nothing. The saved state is what the worker's split evaluator loads, every partition at
the owner's clock. The oracle is the worker's one evaluator (``SegmentEvaluator``) over the
same purchases in another namespace (``tests/integration/test_split_evaluation.py``'s fixtures).
"""

from __future__ import annotations

import asyncio
import pickle
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka.structs import TopicPartition
from kafka import KafkaProducer

from agents.evaluator import CHUNK_STEPS
from agents.ingest import ingest_batch
from agents.kafka_login import aiokafka_login
from agents.partition_host import PartitionHost
from agents.partition_link import PartitionLink, host_link, owner_link
from agents.partition_owner import EvaluationOwner, PartitionsSilent, evaluate_up_to
from agents.settings import Settings
from segstream.kafka_io import ensure_topics
from state.adapters.redis_access import RedisAccess
from state.customer.profile_store import Superseded
from state.customer.rfm import DAY_MS
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_protocol import Advance, Chunk, Message, Saved
from state.evaluator.partitioned import PartitionedEvaluator
from state.models.alerts import Alert
from streams.campaign_contract import CampaignEvent
from streams.frames import FrameError, frames
from streams.outputs import Tick
from streams.topics import EVAL_DELTAS, EVAL_VERSIONS, EVALUATION_TOPICS
from tests.integration.test_split_evaluation import Namespace, access, assert_same_profiles, one, ticks
from tests.unit.test_evaluator_saves import CONFIG, history
from tests.unit.test_segment_evaluator import DAY0, Outbox, no_letters

pytestmark = pytest.mark.integration
__all__ = ["access", "one"]  # the fixtures, used by name

KEY = b"the namespace's key"
FRAME = 4096
PARTITIONS = 4


@pytest.fixture
async def topics(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    ensure_topics(settings, EVALUATION_TOPICS)
    yield settings.topic(EVAL_VERSIONS), settings.topic(EVAL_DELTAS)


async def rewind(link: PartitionLink, records: int) -> None:
    """Make ``link`` read its last ``records`` records of each partition again."""
    for tp in link.consumer.assignment():
        link.consumer.seek(tp, max(0, await link.consumer.position(tp) - records))


class Rig:
    """An owner and hosts over one namespace, each with a link of its own on the broker; what they
    publish goes to one outbox."""

    def __init__(self, settings: Settings, topics: tuple[str, str], namespace: Namespace) -> None:
        self.kafka, (self.versions, self.deltas) = aiokafka_login(settings), topics
        self.namespace = namespace
        self.out = Outbox()
        self.links: list[PartitionLink] = []
        self.serving: dict[int, asyncio.Task[None]] = {}

    async def start(self, dying: int | None = None) -> tuple[list[Tick], list[PartitionLink]]:
        """The generated purchases ingested and a host for every partition (``dying``'s a
        :class:`DyingHost`); the ticks to evaluate and the hosts' links."""
        messages = history()
        await ingest_batch(messages, self.namespace.store, no_letters)
        assert await self.namespace.store.eval_partitions() == PARTITIONS
        kinds = [DyingHost if p == dying else PartitionHost for p in range(PARTITIONS)]
        return ticks(len(messages)), [await self.host(p, kind) for p, kind in enumerate(kinds)]

    async def host(self, partition: int, kind: type[PartitionHost] = PartitionHost) -> PartitionLink:
        link = host_link(self.kafka, KEY, self.versions, self.deltas, partition, FRAME)
        await link.start()
        self.links.append(link)
        ns = self.namespace
        host = kind(CONFIG, partition, ns.store, ns.profiles, ns.rows, self.out)
        self.serving[partition] = asyncio.create_task(host.serve(link, 0.2))
        return link

    async def owner(self, wait_s: float = 60.0) -> tuple[EvaluationOwner, PartitionLink]:
        link = owner_link(self.kafka, KEY, self.versions, self.deltas, PARTITIONS, FRAME)
        await link.start()
        self.links.append(link)
        ns = self.namespace
        owner = EvaluationOwner(
            CONFIG,
            PARTITIONS,
            ns.store,
            ns.profiles,
            ns.rows,
            self.out,
            link,
            chunk_steps=CHUNK_STEPS,
            wait_s=wait_s,
        )
        return owner, link

    async def close(self) -> None:
        for task in self.serving.values():
            task.cancel()
        await asyncio.gather(*self.serving.values(), return_exceptions=True)
        for link in self.links:
            await link.stop()
        await self.namespace.close()

    async def assert_the_one_evaluators(
        self, one: Namespace, owner: ModelOwner, *, alerts_once: bool = True
    ) -> None:
        """Each of the one evaluator's changes published once, its alerts (once each, or at least
        once), its profiles as saved, the agenda empty and a state the worker's split evaluator
        loads at the owner's clock."""
        row = owner.population.index.__getitem__
        changes = sorted(self.out.changes, key=lambda c: (c.at_ms, row(c.customer_id)))
        assert changes == one.out.changes and len(changes) > 1000
        if alerts_once:
            assert (
                Counter(map(repr, self.out.alerts)) == Counter(map(repr, one.out.alerts)) and one.out.alerts
            )
        else:
            assert set(map(repr, self.out.alerts)) == set(map(repr, one.out.alerts)) and one.out.alerts
        last = ticks(len(history()))[-1].as_of_ms
        assert await self.namespace.store.earliest_due(last) is None  # every entry taken out
        await assert_same_profiles(self.namespace, one, sorted({c.customer_id for c in changes}))
        loaded = await self.namespace.evaluator(split=True).keeper.current()  # what a worker would load
        assert isinstance(loaded, PartitionedEvaluator) and not loaded.caught_up  # every partition saved
        assert loaded.clock_ms == owner.clock_ms == last


async def test_owner_and_hosts_over_the_broker_give_the_one_evaluators_changes_alerts_and_profiles(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    rig = Rig(settings, topics, Namespace(access))
    try:
        all_ticks, links = await rig.start()
        owner, link = await rig.owner()
        sent = saved = 0
        send = link.send

        async def send_and_rewind(epoch: int, message: Message) -> None:
            nonlocal sent, saved
            sent += 1
            await send(epoch, message)
            saved += isinstance(message, Saved)
            if saved == 3 and isinstance(message, Saved):  # half way: readers go back
                await rewind(links[2], 200)  # into the middle of a message, many instants back
                await rewind(link, 3)

        link.send = send_and_rewind  # type: ignore[method-assign]
        chunks = published = 0
        for tick in all_ticks:
            advanced = await owner.advance(tick.as_of_ms)
            chunks, published = chunks + advanced.chunks, published + advanced.changes
        assert not any(task.done() for task in rig.serving.values())  # every host still serving
        assert chunks > len(all_ticks) and owner.epochs == 1  # ticks of several chunks, no restart
        assert published == len(rig.out.changes)  # as the hosts told the owner
        records = await link.consumer.end_offsets([TopicPartition(rig.versions, 0)])
        assert sum(records.values()) > sent  # messages larger than a frame crossed in several records
        assert owner.owner is not None
        await rig.assert_the_one_evaluators(one, owner.owner)
    finally:
        await rig.close()


class DyingHost(PartitionHost):
    """A host whose process dies at the 40th advance it is sent (half-way through a chunk)."""

    advances = 0

    async def answer(self, epoch: int, message: Message) -> list[Message]:
        if isinstance(message, Advance):
            type(self).advances += 1
            if type(self).advances == 40:
                raise RuntimeError("the host's worker died")
        return await super().answer(epoch, message)


@pytest.mark.parametrize("access", ["redis"], indirect=True)
async def test_a_host_that_dies_mid_chunk_is_replaced_and_the_results_do_not_move(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    """Partition 1's host dies; another starts for it (as a rebalance would), the owner waits 3 s,
    begins a new epoch from what is saved, and every host loads there: nothing lost, nothing twice."""
    rig = Rig(settings, topics, Namespace(access))
    try:
        all_ticks, _ = await rig.start(dying=1)
        dying = rig.serving[1]

        async def replace() -> None:
            await asyncio.gather(dying, return_exceptions=True)
            await rig.host(1)

        replacing = asyncio.create_task(replace())
        owner, _ = await rig.owner(wait_s=3.0)
        for tick in all_ticks:
            await owner.advance(tick.as_of_ms)
        await replacing
        assert dying.done() and isinstance(dying.exception(), RuntimeError) and owner.epochs == 2
        assert owner.owner is not None
        await rig.assert_the_one_evaluators(one, owner.owner)
    finally:
        await rig.close()


class OwnerDied(Exception):
    pass


@pytest.mark.parametrize("access", ["redis"], indirect=True)
async def test_an_owner_that_dies_mid_tick_is_followed_by_another_and_the_results_do_not_move(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    """The owner's process dies at its 100th message; a new owner loads what is saved, begins its
    epoch, and the hosts (still running) drop what they held and load there."""
    rig = Rig(settings, topics, Namespace(access))
    try:
        all_ticks, _ = await rig.start()
        first, link = await rig.owner()
        count, send = 0, link.send

        async def send_then_die(epoch: int, message: Message) -> None:
            nonlocal count
            count += 1
            if count == 100:
                raise OwnerDied
            await send(epoch, message)

        link.send = send_then_die  # type: ignore[method-assign]
        owner, died_at = first, None
        for n, tick in enumerate(all_ticks):
            try:
                await owner.advance(tick.as_of_ms)
            except OwnerDied:
                died_at = n
                owner, _ = await rig.owner()  # the clock's next owner
                await owner.advance(tick.as_of_ms)
        assert died_at is not None and owner is not first and owner.epoch > first.epoch
        assert not any(task.done() for task in rig.serving.values())
        assert owner.owner is not None
        await rig.assert_the_one_evaluators(one, owner.owner)
    finally:
        await rig.close()


@pytest.mark.parametrize("access", ["redis"], indirect=True)
async def test_an_owner_replaced_while_it_still_runs_cannot_save_over_its_successor(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    """Owner A evaluates the first tick; owner B begins an epoch (the clock moved to it) while A still
    runs. A's next tick is answered by hosts that have not heard of B yet, but its save is refused
    and nothing of that chunk is published by the hosts (they publish after the owner's save); B
    then evaluates every tick and the hosts load at its epoch: the one evaluator's changes once each
    (the drift alerts A published before its refused save may come twice: at least once)."""
    rig = Rig(settings, topics, Namespace(access))
    try:
        (first, *rest), _ = await rig.start()
        (a, _), (b, _) = await rig.owner(), await rig.owner()
        await a.advance(first.as_of_ms)
        await b.begin_epoch()
        with pytest.raises(Superseded, match=f"epoch {a.epoch} is not the last"):
            await a.advance(rest[0].as_of_ms)
        for tick in rest:
            await b.advance(tick.as_of_ms)
        assert b.epochs == 1 and b.owner is not None
        assert not any(task.done() for task in rig.serving.values())
        await rig.assert_the_one_evaluators(one, b.owner, alerts_once=False)
    finally:
        await rig.close()


class NoSaves:
    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        raise AssertionError("no chunk ends here")

    async def closed(self, chunk: Chunk) -> None:
        raise AssertionError("no chunk ends here")


async def test_a_silent_partition_is_named_and_an_unsigned_message_refused(
    settings: Settings, topics: tuple[str, str]
) -> None:
    kafka, (versions, deltas) = aiokafka_login(settings), topics
    link = owner_link(kafka, KEY, versions, deltas, 2, FRAME)
    await link.start()
    try:
        owner = ModelOwner(CONFIG)
        with pytest.raises(PartitionsSilent, match=r"no answer from partitions \[0, 1\] for 1 s"):
            await evaluate_up_to(link, 1, owner, 2, 10 * 86_400_000, 0, CHUNK_STEPS, 1.0, NoSaves())
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
        (forged,) = frames(1, b"\x00" * 32 + pickle.dumps(None))  # a frame of a pickle, not signed
        producer.send(deltas, forged, partition=1).get(timeout=30)
        producer.close()
        with pytest.raises(FrameError, match="not signed with this namespace's key"):
            await link.receive(30.0)
    finally:
        await link.stop()


def campaign(day0: int) -> list[CampaignEvent]:
    """One campaign over the generated customers: exposures on day 45, two thirds of the treated
    and a fifth of the controls responding over the next 20 days (some between ticks, some late)."""
    events = []
    for i in range(150):
        customer, variant = f"c{i}", "treatment" if i % 2 == 0 else "control"
        events.append(CampaignEvent(f"x{i}", customer, "spring", variant, "exposure", day0 + 45 * DAY_MS))
        if (variant == "treatment" and i % 3 != 0) or i % 5 == 0:
            at = day0 + (46 + i % 20) * DAY_MS + i * 1000
            events.append(CampaignEvent(f"r{i}", customer, "spring", variant, "response", at))
    return events


@pytest.mark.parametrize("access", ["redis"], indirect=True)
async def test_campaign_events_in_the_store_reach_the_owner_with_their_chunks_and_leave_the_agenda(
    settings: Settings, topics: tuple[str, str], access: RedisAccess
) -> None:
    """The owner reads the campaign agenda (``ProfileStore.campaign_due``) at each advance and hands
    each chunk its events: the one evaluator's changes, alerts, profiles and campaign readout
    (in the saved summary), and the agenda empty after the last tick."""
    events = campaign(DAY0)
    one = Namespace(access)
    rig = Rig(settings, topics, Namespace(access))
    try:
        messages = history()
        await ingest_batch(messages, one.store, no_letters)
        assert await one.profiles.add_campaign_events(events) == len(events)
        evaluator = one.evaluator(split=False)
        for tick in ticks(len(messages)):
            await evaluator.on_tick(tick)
        all_ticks, _ = await rig.start()
        assert await rig.namespace.profiles.add_campaign_events(events) == len(events)
        owner, _ = await rig.owner()
        for tick in all_ticks:
            await owner.advance(tick.as_of_ms)
        assert owner.owner is not None and owner.owner.campaigns.exposures
        await rig.assert_the_one_evaluators(one, owner.owner)
        summary = await rig.namespace.profiles.summary()
        assert summary is not None and summary["campaigns"]  # the readout, as the one evaluator's
        assert await rig.namespace.profiles.campaign_due(all_ticks[-1].as_of_ms + 1) == []
    finally:
        await rig.close()
        await one.close()
