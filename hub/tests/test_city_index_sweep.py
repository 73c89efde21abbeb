"""The city index's retention (hub/city/router.py sweep_index), on a real NATS JetStream:
a card token whose cases all closed more than CLOSED_KEEP_S ago leaves the index, its
delete marker (whose subject is the token) purged from the bucket's stream too; a token
with an open case or a recent closing stays; a second sweep changes nothing."""

from __future__ import annotations

import json
import time

from onewindow.hub.city import router
from onewindow.hub.city.features import INDEX_BUCKET
from onewindow.tools.testkit.nats_cluster import NatsCluster

DAY = 86400.0
GONE, MIXED, RECENT = "gone" + "a" * 28, "mixd" + "b" * 28, "rcnt" + "c" * 28


def status(token: str, key: str, state: str, at: float) -> dict:
    return {"centre": "c01", "token": token, "key": key, "version": 1, "at": at,
            "state": state, "item": "SOC-2", "due_day": "2026-01-01"}


async def test_closed_cases_leave_the_index_and_their_tokens_the_stream(tmp_path):
    now = time.time()
    old = now - router.CLOSED_KEEP_S - DAY
    with NatsCluster(tmp_path / "nats", size=2) as cluster:
        nc = await cluster.connect()
        try:
            js = nc.jetstream()
            kv = await router.index_bucket(js, replicas=1)
            for body in (status(GONE, "c01/1", "closed", old),
                         status(MIXED, "c01/2", "closed", old),
                         status(MIXED, "c01/3", "open", old),
                         status(RECENT, "c01/4", "closed", now - DAY)):
                await router.merge(kv, body)

            assert await router.sweep_index(kv, now, marker_age_s=0) == 1
            assert sorted(await kv.keys()) == sorted([MIXED, RECENT])
            assert list(json.loads((await kv.get(MIXED)).value)) == ["c01/3"]
            info = await js.stream_info(f"KV_{INDEX_BUCKET}", subjects_filter=">")
            subjects = info.state.subjects or {}
            assert not any(GONE in s for s in subjects), subjects
            assert any(RECENT in s for s in subjects)

            entries = {k: (await kv.get(k)).revision for k in await kv.keys()}
            assert await router.sweep_index(kv, now, marker_age_s=0) == 0
            assert {k: (await kv.get(k)).revision for k in await kv.keys()} == entries
        finally:
            await nc.close()
