"""The city tier's transport (issue 20): a real 3-node NATS JetStream cluster with the
production accounts, R3 streams; a centre may publish only its own subtree; a node stopped
loses nothing that was acknowledged."""

from __future__ import annotations

import asyncio

import pytest

from onewindow.hub.city import streams
from onewindow.hub.city import subjects as sj
from onewindow.tools.testkit.nats_cluster import NatsCluster


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("city"), centres=["c01", "c02"]) as c:
        yield c


async def _streams(city: NatsCluster) -> None:
    nc = await city.connect()
    try:
        await streams.ensure_streams(nc.jetstream(), replicas=3)
        await streams.ensure_streams(nc.jetstream(), replicas=3)  # idempotent
    finally:
        await nc.close()


async def test_centre_publishes_only_its_own_subtree(city):
    await _streams(city)
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    nc = await city.connect_centre("c01", error_cb=on_error)
    try:
        js = nc.jetstream()
        ack = await js.publish(sj.record("c01", sj.TICKET), b"{}",
                               headers={"Nats-Msg-Id": sj.msg_id("c01", 1)})
        assert ack.stream == sj.STREAM and not ack.duplicate
        again = await js.publish(sj.record("c01", sj.TICKET), b"{}",
                                 headers={"Nats-Msg-Id": sj.msg_id("c01", 1)})
        assert again.duplicate and again.seq == ack.seq
        with pytest.raises(Exception):  # noqa: B017 - refused: no ack ever comes
            await js.publish(sj.record("c02", sj.TICKET), b"{}", timeout=1.0,
                             headers={"Nats-Msg-Id": sj.msg_id("c02", 1)})
        with pytest.raises(Exception):  # noqa: B017 - no stream administration either
            await js.delete_stream(sj.STREAM)
        said = [str(e) for e in errors]
        assert any('permissions violation for publish to "city.c02.ticket"' in e
                   for e in said), said
        assert any("stream.delete" in e.lower() for e in said), said
    finally:
        await nc.close()
    admin = await city.connect()
    try:
        info = await admin.jetstream().stream_info(sj.STREAM)
        assert info.config.num_replicas == 3
        names = {s.config.name for s in await admin.jetstream().streams_info()}
        assert {sj.STREAM, sj.STREAM_LIVE, sj.STREAM_DOWN, sj.STREAM_ALL} <= names
        assert "city.c02.ticket" not in await _subjects(admin)
    finally:
        await admin.close()


async def _subjects(nc) -> set[str]:
    info = await nc.jetstream().stream_info(sj.STREAM, subjects_filter=">")
    return set((info.state.subjects or {}).keys())


async def test_a_node_stopped_loses_nothing_acknowledged(city):
    await _streams(city)
    nc = await city.connect_centre("c02")
    admin = await city.connect()
    try:
        js = nc.jetstream()
        before = (await admin.jetstream().stream_info(sj.STREAM)).state.messages
        for pos in range(1, 51):
            # As the exporter does: the same message again until the stream acknowledges
            # it (a leader election after the kill takes seconds); its id dedupes retries.
            async with asyncio.timeout(30):
                while True:
                    try:
                        await js.publish(sj.record("c02", sj.TICKET), b"{}", timeout=2.0,
                                         headers={"Nats-Msg-Id": sj.msg_id("c02", pos)})
                        break
                    except Exception:  # no leader yet, the connection moving
                        await asyncio.sleep(0.2)
            if pos == 20:
                city.stop_node(0, kill=True)
        city.start_node(0)
        city.wait_ready()
        for _ in range(100):  # the restarted node catches up with the stream
            state = (await admin.jetstream().stream_info(sj.STREAM)).state
            if state.messages == before + 50:
                break
            await asyncio.sleep(0.05)
        assert state.messages == before + 50
    finally:
        await nc.close()
        await admin.close()
