"""The partition hosts of one worker: one for each partition of ``purchases`` it is assigned.

With ``SEGSTREAM_EVALUATION_HOSTS`` every worker evaluates the customers of the ``purchases``
partitions it owns (a customer's evaluation partition is the partition their purchases arrive on):
a :class:`agents.partition_host.PartitionHost` each, answering the model owner, which the clock's
owner runs in its evaluation process (``agents.evaluation_process``), over segstream's
``eval-versions`` / ``eval-deltas`` topics (``agents.partition_link``).

A rebalance moves a partition's evaluation with it. Faust revokes every partition at the start of
a rebalance (its eager protocol), so the pool stops every host then (:func:`install_hosts`,
``on_partitions_revoked``) and starts one for each partition of the new assignment when the
rebalance completes (``on_rebalance_complete``); no two workers host one partition at once, apart
from a worker the group dropped while it still runs, whose saves the epochs refuse
(``Superseded``). A host started between chunks loads its partition at the owner's next chunk; one
started while a chunk runs missed its beginning, so the owner, waiting for that partition, begins a
new epoch once it stays silent for ``SEGSTREAM_EVALUATION_WAIT_S`` (``agents.partition_owner``). Hosts run on the worker's event loop beside Faust's consumer (the
folding runs in the ingest process); a host that fails ends the worker, as a failed batch does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

import faust

from agents import metrics
from agents.cancellation import cancel_until_done
from agents.evaluator_keeper import PublishChanges
from agents.kafka_login import aiokafka_login
from agents.partition_host import PartitionHost
from agents.partition_link import PartitionLink, host_link, owner_link
from agents.settings import Settings
from agents.split_saves import PartitionRows
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig
from streams import topics

__all__ = ["HostPool", "evaluation_key", "evaluation_link", "install_hosts"]

log = logging.getLogger(__name__)


def evaluation_key(settings: Settings) -> bytes:
    """The secret that signs the evaluation messages (checked by ``Settings``)."""
    assert settings.evaluation_key is not None
    return settings.evaluation_key.get_secret_value().encode()


def evaluation_link(settings: Settings, *, host: int | None = None, partitions: int = 0) -> PartitionLink:
    """The model owner's link to ``partitions`` hosts, or (``host``) that partition host's link."""
    kafka, key = aiokafka_login(settings), evaluation_key(settings)
    versions, deltas = settings.topic(topics.EVAL_VERSIONS), settings.topic(topics.EVAL_DELTAS)
    if host is None:
        return owner_link(kafka, key, versions, deltas, partitions)
    return host_link(kafka, key, versions, deltas, host)


class HostPool:
    """The hosts of the partitions given to :meth:`assign`, each serving on a link of its own."""

    def __init__(
        self,
        settings: Settings,
        config: EvaluatorConfig,
        store: CustomerStore,
        profiles: ProfileStore,
        rows: PartitionRows,
        publish: PublishChanges,
        on_failure: Callable[[str], None],
    ) -> None:
        self._settings, self._config = settings, config
        self._store, self._profiles, self._rows, self._publish = store, profiles, rows, publish
        self._on_failure = on_failure
        self._hosts: dict[int, tuple[PartitionLink, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()  # revocations and assignments apply in the order they came

    @property
    def partitions(self) -> list[int]:
        """The partitions hosted now."""
        return sorted(self._hosts)

    async def assign(self, partitions: Iterable[int], of: int | None = None) -> None:
        """Host exactly ``partitions``: stop the others' hosts, start the missing ones.

        ``of``: the ``purchases`` topic's partition count, which must be the namespace's
        evaluation partition count (a host per topic partition hosts every evaluation partition);
        ``ValueError`` says so otherwise."""
        wanted = set(partitions)
        if of is not None and wanted and of != (cut := await self._store.eval_partitions()):
            raise ValueError(
                f"the purchases topic has {of} partitions and this namespace is evaluated in {cut}: "
                "evaluation hosts need the two the same (SEGSTREAM_PARTITIONS when the namespace began)"
            )
        async with self._lock:
            for partition in sorted(set(self._hosts) - wanted):
                await self._stop(partition)
            for partition in sorted(wanted - set(self._hosts)):
                await self._start(partition)
            metrics.EVALUATION_HOSTS.set(len(self._hosts))
        if wanted:
            log.info("evaluation hosts for purchases partitions %s", sorted(wanted))

    async def close(self) -> None:
        await self.assign(())

    async def _start(self, partition: int) -> None:
        link = evaluation_link(self._settings, host=partition)
        await link.start()
        host = PartitionHost(self._config, partition, self._store, self._profiles, self._rows, self._publish)
        task = asyncio.create_task(host.serve(link), name=f"evaluation host {partition}")
        task.add_done_callback(self._ended)
        self._hosts[partition] = (link, task)

    async def _stop(self, partition: int, give_up_s: float = 10.0) -> None:
        """Stop partition ``partition``'s host and its link; a host that does not end within
        ``give_up_s`` is left (it may still run: its saves are fenced) so the rebalance goes on."""
        link, task = self._hosts.pop(partition)
        if not await cancel_until_done(task, give_up_s=give_up_s):
            log.error("evaluation host %d did not stop within %g s; left running", partition, give_up_s)
        try:
            await asyncio.wait_for(link.stop(), give_up_s)
        except TimeoutError:
            log.error("the link of evaluation host %d did not stop within %g s", partition, give_up_s)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        self._on_failure(f"{task.get_name()} failed: {exc!r}" if exc else f"{task.get_name()} ended")


def install_hosts(
    app: faust.App,
    settings: Settings,
    pool: HostPool,
    run: Callable[[Any, str], Any],
) -> None:
    """Stop every host when a rebalance begins and host the assigned ``purchases`` partitions when
    it completes; ``run(awaitable, what)``: the worker's way to run a step that must not fail."""
    purchases = settings.topic(topics.PURCHASES)

    async def revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        await run(pool.assign(()), "stopping the evaluation hosts")

    async def assigned(sender: Any, **kwargs: Any) -> None:
        mine = [tp.partition for tp in app.consumer.assignment() if tp.topic == purchases]
        of = app.consumer.topic_partitions(purchases)
        await run(pool.assign(mine, of), "starting the evaluation hosts")

    async def stop(sender: Any, **kwargs: Any) -> None:
        await pool.close()

    app.on_partitions_revoked.connect(cast(Any, revoked))  # mode types async receivers loosely
    app.on_rebalance_complete.connect(cast(Any, assigned))
    app.on_before_shutdown.connect(cast(Any, stop))
