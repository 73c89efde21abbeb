# (MicroPython code: no contextlib, %-formatting is the cheap option on small boards.)
# The device runtime shared by every role: config, the persistent event sequence, the
# device side of protocol v1 (birth, will, events with retries, commands with acks) and a
# supervisor that restarts a crashed app and feeds the watchdog.
#
# Data flows one way here too: MQTT in -> Link routes it -> app decides -> app draws,
# prints or sends an event.

import asyncio
import gc
import json
import os
import time

import ow_protocol as P
from micropython import const
from owmqtt import MQTTClient, tls_context

from ow.ota import Updater

FW = "0.2.0"  # this source tree's version; an image or an OTA bundle carries ow_version.py
try:
    FW = __import__("ow_version").FW
except ImportError:
    pass
_SEQ_STEP = const(32)  # events per flash write of the seq high-water mark
_RECENT_IDS = const(16)  # command ids remembered for at-most-once
_RETRY_MS = const(1500)  # resend an unanswered event (same seq) after this
_WDT_MS = const(8000)
_CRASH_WINDOW_MS = const(60000)
_CRASHES_BEFORE_RESET = const(5)


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    for key in ("centre", "dev", "role", "board"):
        if key not in cfg:
            raise ValueError("config: '%s' is required" % key)
    return cfg


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class SeqStore:
    """The device's event seq. It must survive reboots: the hub drops any event whose seq it
    has already seen. Flash wears, so only a high-water mark is written, once per _SEQ_STEP
    events: after a reboot numbering resumes above it (the hub sees a harmless gap)."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path) as f:
                mark = int(f.read())
        except (OSError, ValueError):
            mark = 0
        self.seq = mark  # last seq that may have been used
        self.reserved = mark
        self.writes = 0

    def next(self):
        self.seq += 1
        if self.seq > self.reserved:
            self._reserve(self.seq + _SEQ_STEP - 1)
        return self.seq

    def bump(self, last):
        """The hub says it has seen up to `last` (e.g. after a reflash): continue above."""
        if last > self.seq:
            self.seq = last
            if last > self.reserved:
                self._reserve(last + _SEQ_STEP)

    def _reserve(self, mark):
        _write_atomic(self.path, str(mark))
        self.reserved = mark
        self.writes += 1


class Link:
    """The device's side of protocol v1 over one MQTT client."""

    def __init__(self, cfg, board):
        self.cfg = cfg
        self.board = board
        self.dev = dev = cfg["dev"]
        c = cfg["centre"]
        self.t_status = P.device_topic(c, dev, "status")
        self.t_evt = P.device_topic(c, dev, "evt")
        self.t_ack = P.device_topic(c, dev, "ack")
        self.t_hub = P.hub_topic(c)
        state_dir = cfg.get("state_dir", ".")
        self.seq = SeqStore(state_dir + "/seq")
        self.alerts = []
        self.sys_alerts = []  # the runtime's own (e.g. ota_rollback), kept apart from the app's
        self.extra = {}  # further birth fields (e.g. "ota": the update state, ow/ota.py)
        self.hub_ready = False
        self._hub_clock = None  # (hub epoch s, ticks_ms when received)
        self._routes = {}  # topic -> fn(payload, retained)
        self._commands = {}  # command type -> async fn(msg, received_ms) -> (ok, code)
        self._waiting = {}  # seq -> [Event, reply]
        self._recent = []  # recently applied command ids
        self._t0 = time.ticks_ms()
        b = cfg.get("broker", {})
        lost = P.encode("status", {"dev": dev, "state": "lost"})
        self.mqtt = MQTTClient(
            {
                "server": b.get("host", "127.0.0.1"),
                "port": b.get("port", 1883),
                "client_id": dev,
                "user": b.get("user"),
                "password": b.get("password"),
                "keepalive": b.get("keepalive", 15),
                "clean": False,
                "will": (self.t_status, lost, True, 1),
                "queue_len": 16,
                # Full jitter over at most 4 s: back within 5 s of the broker, and 100
                # boards spread over 4 s is 25 connects/s, nothing for Mosquitto.
                "backoff_min": b.get("backoff_min", 0.5),
                "backoff_max": b.get("backoff_max", 4),
                # ow.json broker.tls + broker.ca (PEM, from `onewindow provision --tls`)
                "ssl": tls_context(b.get("ca")) if b.get("tls") else None,
            }
        )
        self.mqtt.on_connect = self._on_connect
        for leaf in ("cmd", "res", "err"):
            self.follow(P.device_topic(c, dev, leaf), getattr(self, "_on_" + leaf))
        self.follow(self.t_hub, self._on_hub)
        self.on_command("rebirth", self._rebirth)

    # ---- wiring for apps -------------------------------------------------------------
    def follow(self, topic, fn):
        """Subscribe (kept across reconnects) and route the topic's messages to fn."""
        self._routes[topic] = fn
        self.mqtt._subs[topic] = 1  # subscribed on (re)connect, before the birth
        if self.mqtt.up.is_set():
            asyncio.create_task(self.mqtt.subscribe(topic, 1))

    def on_command(self, typ, fn):
        self._commands[typ] = fn

    def online(self):
        """Can an event reach a live hub now?"""
        return self.mqtt.up.is_set() and self.hub_ready

    def now(self):
        """Epoch seconds: the hub's clock carried forward by ticks (boards have no RTC)."""
        hc = self._hub_clock
        if hc is None:
            return time.time()
        return hc[0] + time.ticks_diff(time.ticks_ms(), hc[1]) / 1000

    def set_hub_clock(self, ts):
        self._hub_clock = (ts, time.ticks_ms())

    # ---- outbound --------------------------------------------------------------------
    async def birth(self):
        msg = {
            "dev": self.dev,
            "state": "ready",
            "role": self.cfg["role"],
            "fw": FW,
            "board": self.board.name,
            "seq": self.seq.seq,
            "alerts": self.alerts + self.sys_alerts if self.sys_alerts else self.alerts,
            "uptime": time.ticks_diff(time.ticks_ms(), self._t0) // 1000,
        }
        if self.cfg.get("window") is not None:
            msg["window"] = self.cfg["window"]
        msg.update(self.extra)
        await self.mqtt.publish(self.t_status, P.encode("status", msg), retain=True)

    async def set_alerts(self, alerts):
        if alerts != self.alerts:
            self.alerts = alerts
            self.board.emit("alerts", alerts=alerts)
            if self.mqtt.up.is_set():
                # Not awaited: a link dying now must not stall a resident's ticket; the
                # birth sent on reconnect carries the alerts anyway.
                asyncio.create_task(self.birth())

    async def event(self, typ, timeout=5.0, seq=None, **fields):
        """Send one event and return the hub's reply: ("res", msg) or ("err", msg), or None
        when no answer came in time. An unanswered event is resent with the same seq, so
        the hub answers a repeat with its original reply instead of acting twice. `seq`:
        one taken with `self.seq.next()` beforehand, for an app that must know which event
        a late answer belongs to (the box's offline fallback)."""
        if seq is None:
            seq = self.seq.next()
        payload = P.encode("evt", P.event(self.dev, seq, typ, **fields))
        slot = [asyncio.Event(), None]  # type: list
        self._waiting[seq] = slot
        end = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        try:
            while True:
                # Wait for the PUBACK (a dead link may hold it; the client resends on
                # reconnect), then for the hub's reply.
                await asyncio.wait_for_ms(
                    self.mqtt.publish(self.t_evt, payload),
                    max(1, time.ticks_diff(end, time.ticks_ms())),
                )
                left = time.ticks_diff(end, time.ticks_ms())
                if left <= 0:
                    return None
                try:
                    await asyncio.wait_for_ms(slot[0].wait(), min(left, _RETRY_MS))
                    return slot[1]
                except asyncio.TimeoutError:
                    if time.ticks_diff(end, time.ticks_ms()) <= 0:
                        return None
        except asyncio.TimeoutError:
            return None
        finally:
            del self._waiting[seq]

    async def ack(self, cmd_id, ok, code=None):
        msg = {"dev": self.dev, "id": cmd_id, "ok": ok}
        if code:
            msg["code"] = code
        await self.mqtt.publish(self.t_ack, P.encode("ack", msg))

    # ---- inbound ---------------------------------------------------------------------
    async def _on_connect(self, client):
        await self.birth()
        self.board.emit("up", connects=client.stats["connects"])

    async def pump(self):
        """Route every inbound message. A bad message is logged and dropped; it never ends
        the pump (an app crash is the supervisor's business, see run())."""
        async for topic, payload, retained in self.mqtt.messages():
            fn = self._routes.get(topic)
            if fn is None:
                continue
            try:
                await fn(payload, retained)
            except P.ProtocolError as e:
                self.board.emit("bad_msg", topic=topic, code=e.code, msg=e.msg)
            payload = None  # let the GC have it before the next message arrives

    async def _on_hub(self, payload, retained):
        if not payload:
            self.hub_ready = False
            return
        msg = P.decode("hub", payload)
        self.hub_ready = msg["state"] == "ready"
        self.board.emit("hub", state=msg["state"])

    async def _on_res(self, payload, retained):
        self._answer("res", P.decode("res", payload))

    async def _on_err(self, payload, retained):
        msg = P.decode("err", payload)
        if msg["code"] == "seq_behind" and "last" in msg:
            self.seq.bump(msg["last"])
        self.board.emit("err", code=msg["code"], msg=msg["msg"])
        self._answer("err", msg)

    def _answer(self, kind, msg):
        seq = msg.get("seq")
        slot = self._waiting.get(seq)
        if slot is None:
            if seq is not None:
                # Nobody waits any more: the app gave up on that event (a box then served
                # the press offline), or it is a repeat of an answer already taken.
                self.board.emit("late", kind=kind, seq=seq, ticket=msg.get("ticket"))
        elif slot[1] is None:
            slot[1] = (kind, msg)
            slot[0].set()

    async def _on_cmd(self, payload, retained):
        received = time.ticks_ms()
        msg = P.decode("cmd", payload)
        cid = msg["id"]
        if cid in self._recent:  # QoS 1 redelivery or a hub repeat: ack, do not redo
            await self.ack(cid, True)
            return
        fn = self._commands.get(msg["type"])
        if fn is None:
            await self.ack(cid, False, "unsupported")
            return
        if "ts" in msg:
            self.set_hub_clock(msg["ts"])
        ok, code = await fn(msg, received)
        self._recent.append(cid)
        if len(self._recent) > _RECENT_IDS:
            self._recent.pop(0)
        await self.ack(cid, ok, code)

    async def _rebirth(self, msg, received):
        await self.birth()
        return True, None


def expired(msg, received_ms):
    """Has a command's ttl (seconds from receipt) run out?"""
    return time.ticks_diff(time.ticks_ms(), received_ms) > msg["ttl"] * 1000


class Tasks:
    """The app's tasks as one unit: the first one to fail takes the others down, so the
    supervisor restarts the whole app rather than leaving a half-dead board."""

    def __init__(self):
        self.failed = asyncio.Event()
        self.error = None
        self._tasks = []

    def start(self, coro):
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self._guard(coro)))

    async def _guard(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # MemoryError included: report, then restart
            if self.error is None:
                self.error = e
            self.failed.set()

    def fail(self, e):
        if self.error is None:
            self.error = e
        self.failed.set()

    def cancel(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []


def _load_board(cfg):
    name = cfg["board"].replace("-", "_")
    mod = __import__("boards." + name, None, None, ("make",))
    return mod.make(cfg)


def _load_app(role):
    mod = __import__("ow.apps." + role, None, None, ("App",))
    return mod.App


async def _feed(wdt):
    # Fed from the event loop: a hung loop stops feeding and the board resets.
    while True:
        wdt.feed()
        await asyncio.sleep_ms(1000)


async def run(cfg):
    board = _load_board(cfg)
    if hasattr(board, "start"):
        await board.start()
    board.emit("boot", dev=cfg["dev"], role=cfg["role"], board=board.name, fw=FW)
    wdt = board.wdt(_WDT_MS)
    if wdt is not None:
        asyncio.create_task(_feed(wdt))
    await board.network_up(cfg)
    link = Link(cfg, board)
    updater = Updater(cfg, board, link, FW)
    asyncio.create_task(updater.trial())
    app_cls = _load_app(cfg["role"])
    crashes = []  # type: list
    while True:
        tasks = Tasks()
        app = app_cls(cfg, board, link, tasks)
        app.start()
        tasks.start(link.pump())
        if crashes == []:
            asyncio.create_task(link.mqtt.connect())
            board.emit("heap", alloc=gc.mem_alloc(), free=gc.mem_free())
        crash = getattr(board, "crash_requested", None)
        if crash is not None:
            tasks.start(_crash_on(crash))
        await tasks.failed.wait()
        tasks.cancel()
        now = time.ticks_ms()
        crashes = [t for t in crashes if time.ticks_diff(now, t) < _CRASH_WINDOW_MS] + [now]
        board.emit("crash", err=repr(tasks.error), n=len(crashes))
        updater.unstable()
        if len(crashes) >= _CRASHES_BEFORE_RESET:
            board.reset()
        await asyncio.sleep_ms(200 * len(crashes))
        gc.collect()


async def _crash_on(flag):
    await flag.wait()
    flag.clear()
    raise RuntimeError("crash requested by the test harness")


def main(path="ow.json"):
    asyncio.run(run(load_config(path)))
