"""The rollout on the wire: a thin aiomqtt adapter around the pure `Rollout`.

It subscribes to the centre's device births (`dev/+/status`, retained: they carry `fw`,
`board` and `ota`) and OTA requests (`dev/+/otareq`), gives the retained births a moment
to arrive, starts the rollout, sends offers and cancels on `dev/{dev}/ota`, answers every
chunk request of a device the rollout lets fetch, and feeds the clock in as `now`.

It is its own MQTT client (`ow-ota-{centre}-…`), so it needs a reachable broker: the
production Mosquitto, or the embedded broker of a running `onewindow hub`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import aiomqtt

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import OTA, OTAREQ, STATUS
from ..config import BrokerURL
from ..mqtt.broker import NO_DELAY
from .bundle import Bundle
from .rollout import Rollout

log = logging.getLogger(__name__)

CHUNK = 2048  # raw bytes per chunk: base64 in JSON stays under a board's 4 KB max_payload


class OtaServer:
    def __init__(self, broker: BrokerURL, centre: str, rollout: Rollout, bundle: Bundle,
                 sig: str, *, chunk: int = CHUNK, tls_ca: str | None = None,
                 on_log: Callable[[float, str, str], None] | None = None,
                 corrupt: Callable[[int, bytes], bytes] | None = None) -> None:
        """`corrupt(i, data) -> data`: a test hook that alters chunks on their way out."""
        self.broker, self.centre, self.rollout = broker, centre, rollout
        self.bundle, self.sig, self.chunk = bundle, sig, chunk
        self.tls_ca = tls_ca
        self.on_log = on_log
        self.corrupt = corrupt
        self.offer_id = os.urandom(4).hex()
        self.served = 0  # chunks sent
        self._logged = 0

    def _offer(self) -> dict[str, Any]:
        b = self.bundle
        return {"id": self.offer_id, "type": "offer", "version": b.version, "size": len(b.data),
                "sha256": b.sha256, "sig": self.sig, "chunk": self.chunk,
                "roles": b.manifest["roles"], "boards": b.manifest["boards"],
                **({"downgrade": True} if b.downgrade else {})}

    async def run(self, settle: float = 1.0, tick: float = 0.25) -> Rollout:
        """Until the rollout is done or failed; returns it."""
        loop = asyncio.get_running_loop()
        b = self.broker
        async with aiomqtt.Client(
            b.host, b.port, username=b.username, password=b.password,
            identifier=f"ow-ota-{self.centre}-{self.offer_id}", keepalive=15,
            socket_options=NO_DELAY,  # one chunk per round trip: no Nagle delay
            tls_params=aiomqtt.TLSParameters(ca_certs=self.tls_ca) if b.tls else None,
        ) as client:
            root = proto.centre_root(self.centre)
            await client.subscribe(root + "/dev/+/status", qos=1)
            await client.subscribe(root + "/dev/+/otareq", qos=1)
            inbox: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

            async def read() -> None:
                async for m in client.messages:
                    inbox.put_nowait(m)

            reader = asyncio.create_task(read(), name="ota-reader")
            try:
                end = loop.time() + settle  # the retained births
                while (left := end - loop.time()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await self._handle(client, await asyncio.wait_for(inbox.get(), left),
                                           loop.time(), started=False)
                await self._act(client, self.rollout.start(loop.time()))
                while not self.rollout.finished:
                    try:
                        m = await asyncio.wait_for(inbox.get(), tick)
                    except TimeoutError:
                        await self._act(client, self.rollout.tick(loop.time()))
                        continue
                    await self._handle(client, m, loop.time(), started=True)
                    await self._act(client, self.rollout.tick(loop.time()))
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await reader
                self._flush()
        return self.rollout

    async def _handle(self, client: aiomqtt.Client, m: aiomqtt.Message, now: float,
                      started: bool) -> None:
        parsed = proto.parse_topic(str(m.topic))
        if parsed is None or parsed[2] is None:
            return
        dev, leaf = parsed[2], parsed[3]
        payload = m.payload if isinstance(m.payload, bytes | bytearray) else b""
        try:
            if leaf == STATUS:
                if not payload:
                    return
                msg = proto.decode(STATUS, payload)
                # Before start() this only records the birth (every target is pending).
                await self._act(client, self.rollout.on_birth(dev, msg, now))
            elif leaf == OTAREQ and started:
                msg = proto.decode(OTAREQ, payload)
                if msg["id"] != self.offer_id or msg["dev"] != dev:
                    return
                if msg["type"] == "get" and self.rollout.may_serve(dev):
                    await self._chunk(client, dev, msg["i"])
                await self._act(client, self.rollout.on_request(dev, msg, now))
        except proto.ProtocolError as e:
            log.warning("ota: %s on %s dropped: %s", e.code, m.topic, e.msg)
        self._flush()

    async def _chunk(self, client: aiomqtt.Client, dev: str, i: int) -> None:
        off = i * self.chunk
        data = self.bundle.data[off:off + self.chunk]
        if i < 0 or not data:
            return
        if self.corrupt is not None:
            data = self.corrupt(i, data)
        msg = {"id": self.offer_id, "type": "chunk", "i": i, "off": off,
               "data": base64.b64encode(data).decode()}
        await client.publish(proto.device_topic(self.centre, dev, OTA),
                             proto.encode(OTA, msg), qos=1)
        self.served += 1

    async def _act(self, client: aiomqtt.Client, actions: list[tuple[str, str]]) -> None:
        for what, dev in actions:
            msg = self._offer() if what == "offer" else {"id": self.offer_id, "type": "cancel"}
            await client.publish(proto.device_topic(self.centre, dev, OTA),
                                 proto.encode(OTA, msg), qos=1)
        self._flush()

    def _flush(self) -> None:
        while self._logged < len(self.rollout.log):
            now, dev, what = self.rollout.log[self._logged]
            self._logged += 1
            if self.on_log is not None:
                self.on_log(now, dev, what)
            else:
                log.info("ota %s: %s", dev, what)


def describe(rollout: Rollout) -> str:
    """One JSON line: the outcome per device (for logs and scripts)."""
    return json.dumps({"version": rollout.version, "status": rollout.status,
                       "reason": rollout.reason,
                       "devices": {d: t.state for d, t in rollout.targets.items()}})
