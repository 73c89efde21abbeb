"""Live views over the hub's real HTTP port: a real hub in this process, a private Mosquitto,
devices as SimDevices over MQTT, SSE read and parsed from the wire (httpx streams, raw
sockets). What is held: one snapshot build per channel per change however many watch it,
a stalled client slows nobody, every client ends on the latest state after a burst, a phone
stream carries only its own ticket, and every accepted HTTP connection has TCP_NODELAY."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx

from onewindow.hub.web.livepatch import apply
from onewindow.tools.simdevice import SimDevice

from .test_hub_mqtt import CENTRE, running_hub

WEB = '\n[web]\nhost = "127.0.0.1"\nport = 0\n'


def web_hub(tmp_path, port, catalog):
    return running_hub(tmp_path, port, catalog, windows=2, extra=WEB)


def site_of(runner):
    return runner.web.app.state.site


def count_builds(site, channel: str) -> Counter[str]:
    """Wrap a channel's snapshot function: how many times it is built, by argument."""
    builds: Counter[str] = Counter()
    build = site.live.channels[channel]

    def counted(arg: str = "") -> Any:
        builds[arg] += 1
        return build(arg)

    site.live.channels[channel] = counted
    return builds


class SSE:
    """One EventSource-like client: parses `event:`/`data:` frames off a real HTTP stream,
    and applies a `patch` event (a delta) to the state before, as ow.js does: `events` holds
    each event's name and the whole state it leaves."""

    def __init__(self, client: httpx.AsyncClient, path: str) -> None:
        self.client, self.path = client, path
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Condition()

    async def _run(self) -> None:
        async with self.client.stream("GET", self.path) as r:
            assert r.status_code == 200, r.status_code
            assert r.headers["content-type"].startswith("text/event-stream")
            name, data = "message", []
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    got = json.loads("\n".join(data))
                    if name == "patch":
                        assert self.events, "a delta before any whole state"
                        got = apply(copy.deepcopy(self.events[-1][1]), got["ops"])
                    async with self.changed:
                        self.events.append((name, got))
                        self.changed.notify_all()
                    name, data = "message", []

    async def wait(self, want, timeout: float = 10.0) -> Any:
        """The first event (already received or to come) whose data satisfies `want`."""
        async with asyncio.timeout(timeout), self.changed:
            while True:
                for _, d in self.events:
                    if want(d):
                        return d
                await self.changed.wait()

    async def wait_last(self, want, timeout: float = 10.0) -> Any:
        """Until the latest event satisfies `want`."""
        async with asyncio.timeout(timeout), self.changed:
            while not (self.events and want(self.events[-1][1])):
                await self.changed.wait()
            return self.events[-1][1]


@contextlib.asynccontextmanager
async def streams(base: str, paths: list[str]) -> AsyncIterator[list[SSE]]:
    limits = httpx.Limits(max_connections=len(paths) + 1)
    async with httpx.AsyncClient(base_url=base, timeout=None, limits=limits) as client:
        out = [SSE(client, p) for p in paths]
        tasks = [asyncio.create_task(s._run()) for s in out]
        try:
            yield out
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def waiting(snap: dict[str, Any], line: str = "soc") -> int:
    return next(w["waiting"] for w in snap["waits"] if w["line"] == line)


async def test_many_streams_on_one_channel_cost_one_build_per_change(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner, \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box:
        site = site_of(runner)
        builds = count_builds(site, "hall")
        async with streams(runner.web.url, ["/live/hall"] * 20) as clients:
            for s in clients:
                await s.wait(lambda d: waiting(d) == 0)
            before, version = builds[""], site.live.version
            await box.send("take", item="SOC-1")
            for s in clients:
                await s.wait(lambda d: waiting(d) == 1)
            changes = site.live.version - version
            built = builds[""] - before
            # 20 watchers, `changes` committed steps (the take, perhaps a device status):
            # each may cost one build of the hall, never one per watcher.
            assert 1 <= built <= changes, (built, changes)


async def test_a_burst_ends_with_every_client_on_the_latest_state(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner, \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box:
        site = site_of(runner)
        builds = count_builds(site, "hall")
        async with streams(runner.web.url, ["/live/hall"] * 5) as clients:
            for s in clients:
                await s.wait(lambda d: waiting(d) == 0)
            before = builds[""]
            n = 40
            await asyncio.gather(*(box.send("take", item="SOC-1") for _ in range(n)))
            for s in clients:
                await s.wait_last(lambda d: waiting(d) == n)
            # coalesced: 40 changes in a burst are fewer hall builds than changes
            assert builds[""] - before < n, builds[""] - before
            for s in clients:  # each state sent once: no two equal frames in a row
                datas = [json.dumps(d, sort_keys=True) for _, d in s.events]
                assert all(a != b for a, b in itertools.pairwise(datas))


async def _stalled_reader(port: int, path: str) -> socket.socket:
    """A raw client that sends its request, reads the response headers and then stops
    reading (a tiny receive buffer, so the hub's writes back up quickly)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)
        assert chunk, "closed before the headers"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


async def _read_until(sock: socket.socket, marker: bytes, timeout: float = 20.0) -> bytes:
    loop = asyncio.get_running_loop()
    seen = b""
    async with asyncio.timeout(timeout):
        while marker not in seen:
            chunk = await loop.sock_recv(sock, 65536)
            assert chunk, "stream closed"
            seen = seen[-len(marker):] + chunk if len(seen) > 1 << 20 else seen + chunk
    return seen


async def test_a_stalled_client_slows_neither_other_clients_nor_the_hub(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner, \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box:
        port = runner.web.port
        live = site_of(runner).live
        # A real channel on the real hub, with frames big enough (~300 KB) that a client
        # not reading fills the kernel's and the server's buffers within a few changes
        # (the padding changes with the state: sent whole each time, not as a delta).
        live.channel("bulk", lambda _arg: {
            "waiting": len(runner.app.centre.queue),
            "pad": chr(97 + len(runner.app.centre.queue) % 26) * 300_000})
        stalled = [await _stalled_reader(port, p) for p in ["/live/hall"] * 2
                   + ["/live/bulk"] * 2]
        try:
            async with streams(runner.web.url, ["/live/hall", "/live/bulk"]) as (hall, bulk):
                n = 0
                for _ in range(30):  # changes one after another, each seen by the readers
                    reply = await box.send("take", item="SOC-1")  # the hub's MQTT path
                    assert reply["ok"]
                    n += 1
                    await hall.wait(lambda d, n=n: waiting(d) == n)
                    await bulk.wait(lambda d, n=n: d["waiting"] == n)
                # the stalled bulk clients were behind: their frames were replaced by newer
                # ones (one frame held each), not queued
                behind = [s for s in live.feeds[("bulk", "")].streams if s.dropped]
                assert len(behind) == 2, [s.dropped for s in live.feeds[("bulk", "")].streams]
            # the stalled clients, reading again, catch up on the latest state
            for sock in stalled:
                await _read_until(sock, f'"waiting":{n},'.encode())
        finally:
            for sock in stalled:
                sock.close()


async def test_a_phone_stream_carries_only_its_own_ticket(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner, \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box, \
            SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", mosquitto.port,
                      window=1) as kp:
        site = site_of(runner)
        builds = count_builds(site, "ticket")
        ids = []
        for _ in range(3):
            number = (await box.send("take", item="SOC-1"))["ticket"]
            ids.append(runner.app.centre.find_ticket(number).id)
        first, second, unwatched = ids
        await kp.send("open")
        async with streams(runner.web.url, [f"/live/ticket/{first}",
                                            f"/live/ticket/{second}"]) as (mine, theirs):
            await mine.wait(lambda d: d["state"] == "waiting")
            await theirs.wait(lambda d: d["state"] == "waiting")
            await kp.send("call")
            await mine.wait(lambda d: d["state"] == "called" and d["window"] == 1)
            await theirs.wait(lambda d: d["state"] == "waiting" and d["ahead"] == 0)
            assert {d["id"] for _, d in mine.events} == {first}
            assert {d["id"] for _, d in theirs.events} == {second}
            assert {name for name, _ in mine.events + theirs.events} == {"ticket"}
        # a ticket nobody watches is never built
        assert set(builds) <= {first, second} and unwatched not in builds


async def test_every_accepted_http_connection_has_tcp_nodelay(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.web.port)
        try:
            writer.write(b"GET /hall?voice=off HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            server = runner.web._server
            accepted = [c.transport.get_extra_info("socket")
                        for c in server.server_state.connections]
            assert accepted, "no connection on the hub's side"
            for sock in accepted:
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            writer.close()


async def test_an_overlong_channel_argument_is_refused_and_builds_nothing(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner:
        site = site_of(runner)
        builds = count_builds(site, "ticket")
        async with httpx.AsyncClient(base_url=runner.web.url) as client:
            r = await client.get("/live/ticket/" + "9" * 65)
            assert r.status_code == 400 and r.json()["code"] == "bad_arg"
        assert not builds and not site.live.feeds
