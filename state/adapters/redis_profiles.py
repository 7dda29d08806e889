"""The segment evaluator's state in Redis (:class:`state.customer.profile_store.ProfileStore`).

Keys, all but the campaign agenda's under one hash tag so one ``MULTI`` covers them (and one Redis
Cluster slot):

- ``<p>eval:{segments}:view``    hash: customer_id -> row (state as of the clock, profile), packed by
  :mod:`state.adapters.view_rows`; empty when the evaluator runs split, whose partitions save
  their rows under their own tags (:mod:`state.adapters.redis_partition_rows`), read from there
- ``<p>eval:{segments}:meta``    string: JSON ``{generation, clock_ms, cutpoints, partitions, save}``
  (``partitions``: the split evaluator's partition count, absent for the one evaluator; ``save``:
  the id of the save that wrote it, which a retried save recognises as its own); a save that
  follows a generation (``after_generation``) is refused (``Superseded``) once another one wrote it
- ``<p>eval:{segments}:model``   string: the learned models' snapshot (clusters, churn, lifetime,
  campaigns, drift), :meth:`state.evaluator.evaluate.Evaluator.snapshot`; written only by a save
  whose snapshot changed (earlier versions wrote it on every save, the open batches inside)
- ``<p>eval:{segments}:batch:<made_at_ms>`` string: one open churn prediction batch (pickled),
  written once by the save after it was made, deleted by the save after its labels arrived
- ``<p>eval:{segments}:batches`` zset: the open batches' ``made_at_ms``, by itself (how a load
  finds the batch keys without a scan)
- campaign events waiting for the evaluator: by evaluation partition, ``<p>eval:{p<n>}:campaign-*``
  (:mod:`state.adapters.redis_campaign_agenda`)
- ``<p>eval:{segments}:versions-log`` string: a model owner's versions since its save before
  (``ModelOwner.take_log``, pickled), written by each of its saves; the one evaluator's saves
  delete it
- ``<p>eval:{segments}:epoch`` integer: the partitioned evaluation's last epoch (``next_epoch``);
  an owner's save that names an older one is refused (``Superseded``)
- ``<p>eval:{segments}:summary`` string: JSON summary of the last save: segments, clusters, the
  churn model's report and scorer weights, the lifetime model's versioned parameters (what every
  worker's HTTP pages and ``segstream export`` score with)

Every operation runs under a :class:`state.adapters.redis_retry.Retrier` (transient errors retried
within the policy's budget); each says why running it again is safe.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

from redis.exceptions import WatchError

from state.adapters.redis_adapter import RedisAdapter
from state.adapters.redis_campaign_agenda import CampaignAgenda
from state.adapters.redis_partition_rows import partition_key
from state.adapters.redis_store_base import EVAL_PARTITIONS
from state.adapters.view_rows import decode_row, encode_row
from state.customer.partitions import customer_partition
from state.customer.profile_store import (
    Record,
    SavedEvaluator,
    SavedVersions,
    Superseded,
    superseded_generation,
)
from streams.campaign_contract import CampaignEvent

__all__ = ["RedisProfileStore"]

_CHUNK = 5000


class _Fence(NamedTuple):
    """What a save must find to write (:meth:`RedisProfileStore.save`), and the id it writes."""

    epoch: int | None
    after_generation: int | None
    save_id: str


class RedisProfileStore(RedisAdapter):
    decode_responses = False

    def _setup(self) -> None:
        base = f"{self._prefix}eval:{{segments}}"
        self._view, self._meta, self._model, self._summary = (
            f"{base}:{name}" for name in ("view", "meta", "model", "summary")
        )
        self._batch, self._batches = f"{base}:batch:", f"{base}:batches"
        self._versions_log = f"{base}:versions-log"
        self._epoch = f"{base}:epoch"
        self.campaigns = CampaignAgenda(self._redis, self._prefix, self._retry, EVAL_PARTITIONS)
        """Campaign events waiting for the evaluator; the worker sets its ``proposed_partitions`` and
        ``dedupe`` window (``SEGSTREAM_PARTITIONS``, ``SEGSTREAM_DEDUPE_WINDOW_S``)."""
        self._split_partitions: int | None = None  # once seen in the meta (it never goes back)

    async def _read_meta(self) -> dict[str, Any]:
        raw = await self._retry("read the evaluator's meta", lambda: self._redis.get(self._meta))
        return dict(json.loads(raw)) if raw else {"generation": 0, "clock_ms": None, "cutpoints": None}

    async def generation(self) -> int:
        return int((await self._read_meta())["generation"])

    async def split_partitions(self) -> int | None:
        """The split evaluator's partition count if it saves the rows (by partition), else None."""
        if self._split_partitions is None:
            held = (await self._read_meta()).get("partitions")
            self._split_partitions = int(held) if held is not None else None
        return self._split_partitions

    async def _split_rows(self) -> list[Record]:
        """Every partition's rows when the evaluator runs split (none otherwise)."""
        split = await self.split_partitions()
        return [
            decode_row(field.decode(), value)
            for p in range(split or 0)
            async for field, value in self._redis.hscan_iter(
                partition_key(self._prefix, p, "rows"), count=_CHUNK
            )
        ]

    async def load(self, *, with_rows: bool = True) -> SavedEvaluator | None:
        return await self._retry("load the evaluator", lambda: self._load(with_rows))  # read-only

    async def _load(self, with_rows: bool) -> SavedEvaluator | None:
        meta = await self._read_meta()
        if not meta["generation"]:
            return None
        rows = []
        if with_rows:
            rows = [
                decode_row(field.decode(), value)
                async for field, value in self._redis.hscan_iter(self._view, count=_CHUNK)
            ]
            rows += await self._split_rows()
        model = cast(bytes | None, await self._redis.get(self._model))
        versions_log = cast(bytes | None, await self._redis.get(self._versions_log))
        return SavedEvaluator(
            int(meta["generation"]),
            meta["clock_ms"],
            meta["cutpoints"],
            model,
            rows,
            await self._read_batches(),
            versions_log,
        )

    async def _read_batches(self) -> list[tuple[int, bytes]]:
        """The open churn batches, oldest first (versions that kept them in the model's snapshot saved none here)."""
        made = [int(m) for m in cast(list[bytes], await self._redis.zrange(self._batches, 0, -1))]
        if not made:
            return []
        raw = cast(list[bytes | None], await self._redis.mget([f"{self._batch}{m}" for m in made]))
        # a batch a concurrent save resolved meanwhile is gone (only a reader loads while one saves)
        return [(m, data) for m, data in zip(made, raw, strict=True) if data is not None]

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        *,
        batches_added: Sequence[tuple[int, bytes]] = (),
        batches_removed: Sequence[int] = (),
        versions_log: bytes | None = None,
        partitions: int | None = None,
        epoch: int | None = None,
        after_generation: int | None = None,
    ) -> int:
        # One MULTI: all or nothing. If it was applied before the error reached us, the retry
        # writes the same rows, batches and state again (deletes what is gone already) under the
        # next generation number; with ``after_generation`` it finds its own save (the meta names
        # this call's ``save`` id) and writes nothing. With an epoch or ``after_generation``, the
        # MULTI runs only if the epoch key and the meta did not move since they were read (WATCH):
        # a newer owner's epoch or another evaluator's save refuses it, and nothing is written.
        batches = (batches_added, batches_removed)
        fence = _Fence(epoch, after_generation, uuid.uuid4().hex)
        return await self._retry(
            "save the evaluator",
            lambda: self._save(
                clock_ms, cutpoints_json, model, records, summary, batches, versions_log, partitions, fence
            ),
        )

    async def next_epoch(self) -> int:
        """INCR of the epoch key: a retry after a lost reply may skip a number; only the order matters."""
        return int(await self._retry("take the next evaluation epoch", lambda: self._redis.incr(self._epoch)))

    async def _save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        batches: tuple[Sequence[tuple[int, bytes]], Sequence[int]],
        versions_log: bytes | None,
        partitions: int | None,
        fence: _Fence,
    ) -> int:
        added, removed = batches
        epoch = fence.epoch
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI ... EXEC
            watched = [self._epoch] if epoch is not None else []
            watched += [self._meta] if fence.after_generation is not None else []
            if watched:
                await pipe.watch(*watched)
            if epoch is not None:
                held = int(await pipe.get(self._epoch) or 0)
                if held != epoch:
                    raise Superseded(f"epoch {epoch} is not the last ({held}): a newer owner saves")
            if fence.after_generation is not None:
                raw = await pipe.get(self._meta)
                last = dict(json.loads(raw)) if raw else {"generation": 0}
                if last.get("save") == fence.save_id:  # this save, applied before its reply was lost
                    return int(last["generation"])
                if int(last["generation"]) != fence.after_generation:
                    raise Superseded(superseded_generation(fence.after_generation, int(last["generation"])))
                generation = fence.after_generation + 1
            else:  # not fenced by generation: read it here (the fenced branch read it under the WATCH)
                generation = await self.generation() + 1
            if watched:
                pipe.multi()  # type: ignore[no-untyped-call]
            for start in range(0, len(records), _CHUNK):
                chunk = records[start : start + _CHUNK]
                pipe.hset(self._view, mapping={str(r["customer_id"]): encode_row(r) for r in chunk})
            if model is not None:
                pipe.set(self._model, model)
            for made_at_ms, data in added:
                pipe.set(f"{self._batch}{made_at_ms}", data)
                pipe.zadd(self._batches, {str(made_at_ms): made_at_ms})
            if removed:
                pipe.delete(*(f"{self._batch}{m}" for m in removed))
                pipe.zrem(self._batches, *(str(m) for m in removed))
            if versions_log is not None:
                pipe.set(self._versions_log, versions_log)
            else:
                pipe.delete(self._versions_log)
            pipe.set(self._summary, json.dumps(summary))
            meta = {
                "generation": generation,
                "clock_ms": clock_ms,
                "cutpoints": cutpoints_json,
                "save": fence.save_id,
            }
            if partitions is not None:
                meta["partitions"] = partitions
            pipe.set(self._meta, json.dumps(meta))
            try:
                await pipe.execute()
            except WatchError:  # the epoch or the meta moved between the read and the MULTI
                raise Superseded(
                    f"epoch {epoch} was superseded while saving"
                    if epoch is not None
                    else f"another evaluator saved while this one saved (after generation {fence.after_generation})"
                ) from None
        return generation

    async def profile(self, customer_id: str) -> Record | None:
        raw = await self._retry("read a profile", lambda: self._redis.hget(self._view, customer_id))
        if raw is None and (split := await self.split_partitions()):
            key = partition_key(self._prefix, customer_partition(customer_id, split), "rows")
            raw = await self._retry("read a profile", lambda: self._redis.hget(key, customer_id))
        return decode_row(customer_id, cast(bytes, raw)) if raw else None

    async def summary(self) -> Record | None:
        raw = await self._retry("read the summary", lambda: self._redis.get(self._summary))
        return dict(json.loads(raw)) if raw else None

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, Record]:
        ids = list(customer_ids)
        found: dict[str, Record] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]

            async def read(chunk: list[str] = chunk) -> list[bytes | None]:  # read-only
                return cast(list[bytes | None], await self._redis.hmget(self._view, chunk))

            raw = await self._retry("read profiles", read)
            found.update({c: decode_row(c, r) for c, r in zip(chunk, raw, strict=True) if r})
        missing = [c for c in ids if c not in found]
        if missing and (split := await self.split_partitions()):
            by_partition: dict[int, list[str]] = {}
            for c in missing:
                by_partition.setdefault(customer_partition(c, split), []).append(c)
            for p, mine in by_partition.items():
                key = partition_key(self._prefix, p, "rows")
                for start in range(0, len(mine), _CHUNK):
                    chunk = mine[start : start + _CHUNK]

                    async def read_split(chunk: list[str] = chunk, key: str = key) -> list[bytes | None]:
                        return cast(list[bytes | None], await self._redis.hmget(key, chunk))  # read-only

                    raw = await self._retry("read profiles", read_split)
                    found.update({c: decode_row(c, r) for c, r in zip(chunk, raw, strict=True) if r})
        return found

    async def versions(self) -> SavedVersions:
        async def read() -> SavedVersions:  # read-only; one MULTI so meta and model are of one save
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._meta)
                pipe.get(self._model)
                raw_meta, model = await pipe.execute()
            meta: dict[str, Any] = json.loads(raw_meta) if raw_meta else {"generation": 0, "cutpoints": None}
            return SavedVersions(int(meta["generation"]), meta["cutpoints"], cast(bytes | None, model))

        return await self._retry("read the evaluator's versions", read)

    async def add_campaign_events(self, events: Sequence[CampaignEvent]) -> int:
        return await self.campaigns.add(events)

    async def campaign_due(self, up_to_ms: int) -> list[CampaignEvent]:
        return await self.campaigns.due(up_to_ms)

    async def campaign_done(self, events: Iterable[CampaignEvent]) -> None:
        await self.campaigns.done(events)
