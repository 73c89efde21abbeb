# (MicroPython code: no contextlib, %-formatting is the cheap option on small boards.)
# The device runtime shared by every role: config, the link to the hub (the device side of
# protocol v1 is protocol/ow_device.py, imported as `ow_device`: seq, birth, will, events
# with retries, commands with acks; this carries out what it decides), and a supervisor
# that restarts a crashed app and feeds the watchdog.
#
# Data flows one way here too: MQTT in -> Link routes it -> app decides -> app draws,
# prints or sends an event.

import asyncio
import gc
import json
import os
import time

import ow_device as D
import ow_protocol as P
from micropython import const
from owmqtt import MQTTClient, tls_context

from ow.ota import Updater

FW = "0.2.0"  # this source tree's version; an image or an OTA bundle carries ow_version.py
try:
    FW = __import__("ow_version").FW
except ImportError:
    pass
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


def _read_mark(path):
    """The stored seq high-water mark (ow_device.Device: numbering resumes above it)."""
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


class Link:
    """The device's side of protocol v1: ow_device decides, this carries it out over one
    MQTT client (owmqtt), the seq mark in flash and the board's log."""

    def __init__(self, cfg, board):
        self.cfg = cfg
        self.board = board
        self.dev = dev = cfg["dev"]
        self._mark_path = cfg.get("state_dir", ".") + "/seq"
        self.core = core = D.Device(
            cfg["centre"],
            dev,
            cfg["role"],
            time.ticks_ms(),
            seq=_read_mark(self._mark_path),
            save=self._save_mark,
            fw=FW,
            board=board.name,
            window=cfg.get("window"),
            ticks_diff=time.ticks_diff,
        )
        self.sys_alerts = core.sys_alerts  # the runtime's own (e.g. ota_rollback)
        self.extra = core.extra  # further birth fields (e.g. "ota": the update state, ow/ota.py)
        self._routes = {}  # an app's topic -> fn(payload, retained)
        self._commands = {}  # command type -> async fn(msg, received_ms) -> (ok, code)
        self._waiting = {}  # seq -> [Event, reply]
        b = cfg.get("broker", {})
        self.mqtt = MQTTClient(
            {
                "server": b.get("host", "127.0.0.1"),
                "port": b.get("port", 1883),
                "client_id": dev,
                "user": b.get("user"),
                "password": b.get("password"),
                "keepalive": b.get("keepalive", 15),
                "clean": False,
                "will": core.will() + (True, 1),
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
        for topic in core.subs:  # cmd, res, err, the hub's status: before every birth
            self.mqtt.subscribe_on_connect(topic, 1)

    def _save_mark(self, mark):
        _write_atomic(self._mark_path, str(mark))

    # ---- wiring for apps -------------------------------------------------------------
    @property
    def alerts(self):
        return self.core.alerts

    def follow(self, topic, fn):
        """Subscribe (kept across reconnects) and route the topic's messages to fn."""
        self._routes[topic] = fn
        self.mqtt.subscribe_on_connect(topic, 1)
        if self.mqtt.up.is_set():
            asyncio.create_task(self.mqtt.subscribe(topic, 1))

    def on_command(self, typ, fn):
        self._commands[typ] = fn
        self.core.runs.append(typ)

    def online(self):
        """Can an event reach a live hub now?"""
        return self.mqtt.up.is_set() and self.core.hub_ready

    def now(self):
        """Epoch seconds: the hub's clock carried forward by ticks (boards have no RTC)."""
        t = self.core.clock(time.ticks_ms())
        return time.time() if t is None else t

    # ---- outbound --------------------------------------------------------------------
    async def birth(self):
        await self._pub(self.core.birth(time.ticks_ms()))

    async def _pub(self, a):
        await self.mqtt.publish(a[1], a[2], retain=a[3])

    async def set_alerts(self, alerts):
        acts = self.core.set_alerts(alerts, time.ticks_ms())
        if acts:  # they changed
            self.board.emit("alerts", alerts=alerts)
            if self.mqtt.up.is_set():
                # Not awaited: a link dying now must not stall a resident's ticket; the
                # birth sent on reconnect carries the alerts anyway.
                asyncio.create_task(self._pub(acts[0]))

    async def event(self, typ, timeout=5.0, seq=None, **fields):
        """Send one event and return the hub's reply: ("res", msg) or ("err", msg), or None
        when no answer came in time. An unanswered event is resent with the same seq, so
        the hub answers a repeat with its original reply instead of acting twice. `seq`:
        one taken with `self.core.next_seq()` beforehand, for an app that must know which
        event a late answer belongs to (the box's offline fallback)."""
        core = self.core
        acts = core.event(typ, time.ticks_ms(), int(timeout * 1000), seq, **fields)
        seq = acts[0][1]
        slot = [asyncio.Event(), None]  # type: list
        self._waiting[seq] = slot
        try:
            while True:
                for a in acts:  # SEND or EXPIRED
                    if a[0] == D.EXPIRED:
                        return None
                    # Wait for the PUBACK (a dead link may hold it; the client resends on
                    # reconnect), at most until the event's timeout.
                    left = core.wait_ms(time.ticks_ms(), seq) or 0
                    try:
                        await asyncio.wait_for_ms(self.mqtt.publish(core.t_evt, a[2]), max(1, left))
                        core.puback(seq, time.ticks_ms())
                    except asyncio.TimeoutError:
                        pass
                wait = core.wait_ms(time.ticks_ms(), seq)
                if wait is None:  # answered meanwhile
                    return slot[1]
                try:
                    await asyncio.wait_for_ms(slot[0].wait(), max(1, wait))
                    return slot[1]
                except asyncio.TimeoutError:
                    acts = core.tick(time.ticks_ms(), seq)
        finally:
            del self._waiting[seq]
            core.drop(seq)

    # ---- inbound ---------------------------------------------------------------------
    async def _on_connect(self, client):
        # owmqtt has subscribed to core.subs (subscribe_on_connect): the birth is what is left.
        await self.birth()
        self.board.emit("up", connects=client.stats["connects"])

    async def pump(self):
        """Route every inbound message. A bad message is logged and dropped; it never ends
        the pump (an app crash is the supervisor's business, see run())."""
        async for topic, payload, retained in self.mqtt.messages():
            try:
                acts = self.core.message(topic, payload, time.ticks_ms())
                if acts is not None:
                    await self._do(acts)
                else:
                    fn = self._routes.get(topic)
                    if fn is not None:
                        await fn(payload, retained)
            except P.ProtocolError as e:
                self.board.emit("bad_msg", topic=topic, code=e.code, msg=e.msg)
            # Let the GC have the payload and the actions (a print's hold its whole ticket)
            # before the next message arrives. Clearing the names is not enough: the GC
            # scans a suspended coroutine's whole frame, and the calls above left both in
            # value-stack slots that only another call overwrites (2.3 KB of a box's heap
            # after each print, measured on the 32-bit unix port).
            payload = acts = None
            _overwrite(None, None, None, None, None)

    async def _do(self, acts):
        board = self.board
        for a in acts:
            tag = a[0]
            if tag == D.PUB:
                await self._pub(a)
            elif tag == D.REPLY:
                slot = self._waiting.get(a[1])
                if slot is not None and slot[1] is None:
                    slot[1] = (a[2], a[3])
                    slot[0].set()
            elif tag == D.RUN:
                msg = a[1]
                ok, code = await self._commands[msg["type"]](msg, a[2])
                await self._do(self.core.done(msg["id"], ok, code))
            elif tag == D.ERROR:
                board.emit("err", code=a[1]["code"], msg=a[1]["msg"])
            elif tag == D.LATE:
                # Nobody waits any more: the app gave up on that event (a box then served
                # the press offline), or it is a repeat of an answer already taken.
                board.emit("late", kind=a[1], seq=a[2]["seq"], ticket=a[2].get("ticket"))
            elif tag == D.REFUSED:
                board.emit("refused", ticket=a[1]["ticket"], seq=a[1].get("seq"), code=a[2])
            elif tag == D.HUB and a[1] is not None:
                board.emit("hub", state=a[1])


def _overwrite(*slots):
    # Called with Nones: its arguments overwrite the caller's stale value-stack slots.
    pass


def expired(msg, received_ms):
    """Has a command's ttl (seconds from receipt) run out?"""
    return D.expired(msg, time.ticks_diff(time.ticks_ms(), received_ms))


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
