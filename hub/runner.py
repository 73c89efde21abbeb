"""The hub process: MQTT in, the app decides, the journal commits, MQTT out.

One processor task takes what the MQTT client received in batches, so what arrives while a
batch is being handled and committed forms the next one (group commit: one fsync for many
operations). Nothing a batch produced is published before its records are durable; then
it is handed to paho at once, in order (hub/mqtt/direct.py). A commit that fails stops the
hub visibly until storage is back and the state is rebuilt from the journal.

Beside the batches, in the same loop: the MQTT session (reconnect with jitter, everything
retained republished on each connect), the device registry kept current
(hub/registry_sync.py), the fleet summary, the wait forecast (hub/forecast/refresh.py) and
checkpoints (hub/checkpoints.py). The runner is also the web side's `HubPort`
(hub/web/port.py). `serve` (hub/serve.py) wires a whole hub process from its configuration.

Why one module of 408 lines: the durability order (nothing published before its records commit;
a failed commit stops intake until `_recover` has rebuilt the state) is kept by the session, the
batch handler, `commit`, `_storage_lost`, `_recover` and `_publish` together, through one
`storage_ok` gate and one list of unsent messages; what could live apart already does (the app,
checkpoints, registry_sync, forecast/refresh, mqtt/direct).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from ..protocol import ow_protocol as proto
from .app import HubApp, Step
from .app.inbound import DEVICE_LEAVES
from .app.notices import due_step
from .catalog import load_catalog
from .checkpoints import Checkpoints
from .city.features import CASES_WAIT_S
from .config import BrokerURL, HubConfig, check
from .core import reminders
from .core.centre import Centre
from .core.commands import Command
from .core.notices import NoticeRules
from .core.rejected import Rejected
from .devices import Publish
from .fleetwatch import FleetRules
from .forecast.refresh import WaitRefresher
from .mqtt.broker import NO_DELAY
from .mqtt.coalesce import Coalescer
from .mqtt.direct import DirectLink
from .registry_sync import learn_unknown, refresh_registry
from .startup import rebuild
from .store.history import History
from .store.journal import Journal, StorageUnavailable, storage_errors
from .store.snapshot import SnapshotStore

log = logging.getLogger("onewindow.hub")

BATCH = 256  # messages per group commit at most
# paho allows 20 unacknowledged QoS 1 messages by default and queues the rest behind PUBACK
# round trips; a busy hub sends ~3 per call, so 30 windows calling at once would queue. 0 is
# paho's "no limit": with any limit, paho walks every unacknowledged message on each PUBACK
# (Client._update_inflight), quadratic in a burst (58 us per PUBACK with a few hundred out,
# profiled in tools/bench/bench_hub.py); what the hub has out is bounded by its own
# MAX_UNSENT and the broker's acknowledgements anyway.
MAX_INFLIGHT = 0
PENDING_WARN = 10_000  # aiomqtt warns above this many publishes awaiting their PUBACK
RECONNECT_MIN, RECONNECT_MAX = 0.2, 10.0
FLEET_TICK = 1.0  # s
REMINDER_TICK = 15.0  # s: how late a booking reminder may go, at most (hub/core/reminders.py)
MAX_UNSENT = 20000  # failed publishes kept for the next connection, at most
# A card's open cases in the city, added to the answer of a card tap (`card_cases`).
CARD_TAPS = ("pickup", "card")  # a kiosk's pick-up by card, a window's look-up
CARD_CASES_WAIT = CASES_WAIT_S  # s the answer waits for the city at most
MAX_CITY_CASES = 10
MAX_TAPS = 1000
# What a device is told of each case: no token, no name, no number.
CITY_CASE_FIELDS = ("key", "item", "state", "due_day", "approver", "pickup", "centre")
RES_LEAF, ERR_LEAF = "res", "err"
# Storage outage: how often to try the journal again (doubling from the first to the last).
STORAGE_RETRY_MIN, STORAGE_RETRY_MAX = 0.25, 2.0
STOP_SETTLE = 5.0  # s: at a stop, the broker's acknowledgements waited for at most


def build_app(config: HubConfig, journal: Journal, boot: str | None = None,
              booking_key: bytes | None = None) -> HubApp:
    """The app with its state rebuilt from the journal. Its devices: centre.toml's
    [[devices]] and the fleet registry in the same database (hub/fleet/registry.py).
    `booking_key`: what booking codes are signed with (hub/core/booking.py derive_key from
    the centre's secret; None: no booking codes, hence no booking at this hub)."""
    from .fleet.hub import fleet_registry

    catalog = load_catalog(config.catalog_path)
    check(config, catalog)
    registry = fleet_registry(config, journal.engine)
    boot = boot or secrets.token_hex(3)
    history = History(journal.engine)  # past days' tables (hub/store/history.py)

    def fresh() -> HubApp:
        for dev in registry.devices.values():  # a failed attempt's seqs go too
            dev.last_seq, dev.last_reply = 0, []
        app = HubApp(Centre(catalog, config.centre), registry, boot, config.status_url)
        app.fleet.rules = FleetRules.from_table(config.fleet)
        app.history_sink = history.sink
        app.case_archive = history  # closed cases that left memory (reopen, look-ups)
        app.booking_key = booking_key
        app.admission = config.admission  # [admission] mode (hub/app/admission.py)
        app.admission_stop_quantile = config.admission_stop_quantile  # ... and stop's quantile
        app.slip_chinese = config.slip_chinese  # [centre] slip_chinese (hub/app/tickets.py)
        return app

    # The latest good snapshot plus the records after it (hub/startup.py).
    return rebuild(fresh, journal, SnapshotStore(journal.engine))


class HubRunner:
    def __init__(self, app: HubApp, journal: Journal, broker: BrokerURL,
                 clock: Callable[[], float] = time.time, tls_ca: str | None = None) -> None:
        self.app = app
        app.registry.looked_up_elsewhere = True  # hub/registry_sync.py does the look-ups
        self.journal = journal
        self.broker = broker
        self.tls_ca = tls_ca  # mqtts: the CA file that signed the broker's certificate
        # The HTTP API's check of registry-derived upload tokens (hub/fleet/hub.py).
        self.token_lookup: Callable[[str], str | None] | None = None
        self.clock = clock
        self.connected = asyncio.Event()
        self._listeners: list[Callable[[Step], None]] = []  # live views: `subscribe`
        self._link: DirectLink | None = None  # the connected client's call path
        self.handled = 0  # messages taken from the broker (the collector's sign of calm)
        self.published = 0  # messages handed to the broker (GET /metrics)
        self._unsent: list[Publish] = []  # publishes that failed: sent on the next connect
        # The hall board's retained list: the latest at most every HALL_GAP (coalesce.py).
        self._hall = Coalescer(proto.hall_topic(app.centre_id), self._send)
        self._client: aiomqtt.Client | None = None
        self.web: Any = None  # hub.web.WebServer when [web] is configured
        self.embedded_broker: Any = None  # the broker serve() started (no [broker] url)
        # Storage: set while the journal takes writes. Cleared when a commit fails; then the
        # hub says it is not ready, handles nothing, and `_recover` brings it back.
        self.storage_ok = asyncio.Event()
        self.storage_ok.set()
        self.outages = 0
        # The app as start-up builds it from the journal (serve sets it: build_app).
        self.rebuild: Callable[[], HubApp] | None = None
        self._recovery: asyncio.Task[None] | None = None
        # Snapshots after committed batches (hub/checkpoints.py): serve() sets the store.
        self.checkpoints = Checkpoints(app, clock, self.storage_ok)
        # Notices (hub/core/notices.py): the rules and channels serve() configures; None:
        # no notice is ever due. The phone vault seals residents' numbers (remote takes).
        self.notice_rules: NoticeRules | None = None
        self.notice_channels: tuple[str, ...] = ()
        self.phone_vault: Any = None
        self.notifier: Any = None  # hub/notify/dispatcher.py Dispatcher
        # In a city ([city]: serve sets it to hub/city/features.py's city_cases): a card
        # tapped at a kiosk (`pickup` by card) or a window (`card`) is answered with the
        # card's open cases anywhere in the city (`city`), asked after the commit, so the
        # hub never waits on the city; by (device, seq) the taps awaiting their answer.
        self.card_cases: Callable[[str], Awaitable[list[dict[str, Any]] | None]] | None = None
        self._taps: dict[tuple[str, int], str] = {}
        self._tap_tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        delay = RECONNECT_MIN
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    self._session_ended()
                    delay = RECONNECT_MIN
                except aiomqtt.MqttError as e:
                    self._session_ended()
                    self.connected.clear()
                    # Full jitter: a centre's hub and boards must not reconnect in lockstep.
                    wait = random.uniform(0, delay)
                    log.warning("broker %s:%d unavailable (%s); retrying in %.1f s",
                                self.broker.host, self.broker.port, e, wait)
                    delay = min(delay * 2, RECONNECT_MAX)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            if self._recovery is not None:
                self._recovery.cancel()
            await self.checkpoints.finish()

    async def _session(self, stop: asyncio.Event) -> None:
        will = self.app.will()
        root = proto.centre_root(self.app.centre_id)
        async with aiomqtt.Client(
            self.broker.host, self.broker.port,
            username=self.broker.username, password=self.broker.password,
            identifier=f"ow-hub-{self.app.centre_id}", clean_session=False, keepalive=10,
            socket_options=NO_DELAY,
            max_inflight_messages=MAX_INFLIGHT,
            will=aiomqtt.Will(will.topic, will.payload, qos=1, retain=True),
            max_queued_incoming_messages=10000,
            tls_params=aiomqtt.TLSParameters(ca_certs=self.tls_ca) if self.broker.tls else None,
        ) as client:
            # aiomqtt logs a warning per publish above 10 in flight; a busy hub has dozens.
            client.pending_calls_threshold = PENDING_WARN
            self._client = client
            self._link = link = DirectLink(client)
            for leaf in DEVICE_LEAVES:
                await client.subscribe(f"{root}/dev/+/{leaf}", qos=1)
            if self.storage_ok.is_set():
                # The broker may have lost retained state (amqtt keeps none): we are the truth.
                await self._publish(self.app.retained_state(self.clock()))
                await self._publish(self.app.rebirth_requests())
            else:  # storage is away: say so, and nothing of the unstored state (_recover)
                await self._publish([self.app.birth(self.clock(), "disconnected")])
            # What the last session could not deliver (stored already: safe to send).
            unsent, self._unsent = self._unsent, []
            await self._publish(unsent)
            self.connected.set()
            log.info("hub %s ready on %s:%d", self.app.centre_id, self.broker.host,
                     self.broker.port)
            # First: the wait forecast takes are placed into, made at once if there is none,
            # then simulated again between messages when stale (hub/forecast/refresh.py).
            waits: asyncio.Task[Any] = asyncio.create_task(
                WaitRefresher(self.app, self.clock, busy=link.waiting).run(), name="hub-waits")
            reader: asyncio.Task[Any] = asyncio.create_task(link.closed(), name="hub-link")
            worker: asyncio.Task[Any] = asyncio.create_task(self._process(link),
                                                            name="hub-processor")
            stopper: asyncio.Task[Any] = asyncio.create_task(stop.wait(), name="hub-stop")
            fleet: asyncio.Task[Any] = asyncio.create_task(self._fleet(), name="hub-fleet")
            reminding: asyncio.Task[Any] = asyncio.create_task(self._reminders(),
                                                               name="hub-reminders")
            registry: asyncio.Task[Any] = asyncio.create_task(
                refresh_registry(self.app, self.clock), name="hub-registry")
            done, _ = await asyncio.wait({reader, worker, stopper, fleet, registry, waits,
                                          reminding}, return_when=asyncio.FIRST_COMPLETED)
            for t in (reader, worker, stopper, fleet, registry, waits, reminding):
                t.cancel()
            for t in done:
                if t is not stopper and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if stop.is_set():
                if self.storage_ok.is_set():
                    # Unstored leftovers are dropped unanswered: their devices retry.
                    with contextlib.suppress(StorageUnavailable):
                        await self._drain(link)
                await self._publish([self.app.birth(self.clock(), "disconnected")])
                await link.settle(STOP_SETTLE)

    def _session_ended(self) -> None:
        """What the broker did not acknowledge goes out again on the next connection."""
        link, self._client, self._link = self._link, None, None
        lost = link.unacknowledged() if link is not None else []
        if lost:
            log.warning("%d messages not acknowledged by the broker: the non-retained ones "
                        "are sent again after reconnecting", len(lost))
        for p in lost:
            self._keep_unsent(p)

    async def _fleet(self) -> None:
        """The retained fleet summary: on connect, then whenever it changes (checked each
        FLEET_TICK: an offline alert begins with no message at all)."""
        force = True
        while True:
            await self.storage_ok.wait()  # the summary of unstored state is not published
            now = self.clock()
            await self._publish(self.app.fleet.update(self.app.registry.devices.values(),
                                                      now, force))
            force = False
            await asyncio.sleep(FLEET_TICK)

    async def _reminders(self) -> None:
        """Booking reminders fall due by the clock, in a quiet hall too, not only after a
        step (hub/core/reminders.py): looked for every REMINDER_TICK, journaled as due
        like any notice (then the dispatcher sends them)."""
        while True:
            if self.notice_rules is not None and self.notice_channels and \
                    self.storage_ok.is_set():
                now = self.clock()
                for cmd in reminders.due(self.app.centre, self.notice_rules, now,
                                         self.notice_channels):
                    try:
                        step = self.app.operate(cmd, now)
                    except Rejected as e:
                        log.info("booking reminder %s not due: %s", cmd.booking, e.code)
                        continue
                    except Exception:
                        # A fault of ours ends neither the broker session nor the timer:
                        # the state is rebuilt from the journal, as after a failed message.
                        log.exception("booking reminder %s: not decided; rebuilding the "
                                      "state from the journal", cmd.booking)
                        with contextlib.suppress(StorageUnavailable):
                            self._reload()
                        break
                    try:
                        await self.commit(step)
                    except StorageUnavailable:  # recovered from the journal: asked again
                        break
            await asyncio.sleep(REMINDER_TICK)

    async def _process(self, link: DirectLink) -> None:
        while True:
            batch = await link.batch(BATCH)
            self.handled += len(batch)
            await self._handle_stored(batch)

    async def _handle_stored(self, batch: list[aiomqtt.Message]) -> None:
        """Handle a batch until its records are durable, however long storage is away.

        When the commit fails, `app.handle` has already changed the in-memory state for
        records that are not in the journal, and nothing of the batch was published. We keep
        the batch's messages, wait for `_recover` to rebuild the state from the journal (as
        a start-up would), and handle the very same messages again, in order, before any
        later one. Not "drop them and wait for the devices' retries": births and acks are
        never retried, and the broker already considers every one of them delivered. A
        device that retried meanwhile sends the same seq, which queues behind the original
        and is then answered as a repeat (same reply): one press stays one ticket."""
        while True:
            await self.storage_ok.wait()
            try:
                await self._handle_batch(batch)
                return
            except StorageUnavailable as e:
                # Lost in commit(), or in a journal read (a rebuild after a failed message):
                # either way the state is not to be trusted until `_recover` rebuilt it.
                await self._storage_lost(e)

    async def _drain(self, link: DirectLink) -> None:
        batch = link.pending()
        if batch:
            await self._handle_batch(batch)

    async def _handle_batch(self, batch: list[aiomqtt.Message]) -> None:
        """Per-message failures stop at `HubApp.handle` (answered, counted, dropped); one
        that left the state half-changed (`app.damaged`) is repaired here: what the batch
        made so far is committed, then the state is rebuilt from the journal."""
        # Before any state changes: nothing uncommitted (hub/registry_sync.py).
        await learn_unknown(self.app, self.clock, batch)
        step = Step()
        for message in batch:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            if self.card_cases is not None:
                self._note_tap(str(message.topic.value), bytes(payload))
            one = self.app.handle(str(message.topic.value), bytes(payload), self.clock(),
                                  retained=bool(message.retain))
            step.records += one.records
            step.publishes += one.publishes
            if self.app.damaged:
                await self.commit(step)
                step = Step()
                self._reload()
        await self.commit(self._with_notices(step))

    def _reload(self) -> None:
        """The state again from storage after a failed message: from the newest good
        snapshot and the journal after it (a year's full replay would stall the hub for
        minutes), or from the whole journal when no snapshot restores."""
        store = self.checkpoints.store
        for snap in store.candidates() if store is not None else ():
            try:
                self.app.reload(self.journal.read(int(snap["pos"])), snap)
                return
            except StorageUnavailable:
                raise
            except Exception:
                log.exception("snapshot at position %s does not restore; trying an older "
                              "one", snap.get("pos"))
        self.app.reload(self.journal.read())

    async def commit(self, step: Step) -> None:
        """Make a step's records durable, then send its messages. Raises StorageUnavailable,
        with nothing published, when the journal cannot take them (or storage is still
        being recovered): the caller's state change is then undone by `_recover`."""
        if not self.storage_ok.is_set():
            raise StorageUnavailable("the journal is unavailable; the hub is recovering it")
        if step.records:
            try:
                # In the loop thread, on purpose: a worker thread waits for the GIL behind
                # the loop (up to the 5 ms switch interval), which cost more than the commit.
                # Messages arriving meanwhile queue up and form the next group commit.
                self.journal.append(step.records)
            except StorageUnavailable as e:
                await self._storage_lost(e)
                raise
        await self._publish(step.publishes)
        if self._link is not None:
            # Written now, before the live views' and checkpoints' work below
            # (hub/mqtt/direct.py flush).
            self._link.flush()
        self.app.settle_waits()  # after the messages: nothing of them needed it (state.py)
        for listener in self._listeners:
            listener(step)
        if step.records:
            self.checkpoints.after_commit()

    # ---- the web side's port (hub/web/port.py: HubPort) ----------------------------------
    def storage_available(self) -> bool:
        return self.storage_ok.is_set()

    def inbound_waiting(self) -> bool:
        link = self._link
        return link is not None and link.waiting()

    async def submit(self, cmd: Command) -> Step:
        """A staff or kiosk action, decided now and committed like a batch of device events.
        Raises Rejected, or StorageUnavailable with nothing decided."""
        if not self.storage_ok.is_set():
            raise StorageUnavailable("the journal is unavailable; the hub is recovering it")
        step = self._with_notices(self.app.operate(cmd, self.clock()))
        await self.commit(step)
        return step

    def _with_notices(self, step: Step) -> Step:
        """`step` and the notices it made due (hub/app/notices.py), journaled with it:
        a notice is in the journal before the dispatcher sends it."""
        if self.notice_rules is None or not step.records:
            return step
        due = due_step(self.app, self.notice_rules, self.notice_channels, self.clock(),
                       step.records)
        if due.records:
            step.records += due.records
            step.publishes += due.publishes
        return step

    async def send(self, publishes: list[Publish]) -> None:
        """Messages that change no state: nothing to journal, straight to the broker."""
        await self._publish(publishes)

    def subscribe(self, listener: Callable[[Step], None]) -> None:
        """`listener(step)` after every committed step; an empty step after a rebuild."""
        self._listeners.append(listener)

    async def _storage_lost(self, error: StorageUnavailable) -> None:
        """Stop accepting work, visibly: the retained hub status says `disconnected`, so
        devices go to their offline fallback at once instead of waiting for answers."""
        if not self.storage_ok.is_set():
            return
        self.storage_ok.clear()
        self.outages += 1
        log.error("journal unavailable (%s): hub not ready, nothing acknowledged until "
                  "storage returns", error)
        await self._publish([self.app.birth(self.clock(), "disconnected")])
        self._recovery = asyncio.create_task(self._recover(), name="hub-storage-recovery")

    async def _recover(self) -> None:
        """Try the journal with a real write, backing off; once it takes one, rebuild the
        app's state from the journal (the failed batch's changes were never stored), then
        say `ready` and republish everything, as on a (re)connect."""
        delay = STORAGE_RETRY_MIN
        started = time.monotonic()
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORAGE_RETRY_MAX)
            try:
                # In a thread: a database that hangs rather than refuses must not stop the
                # loop (MQTT keepalives, the web pages) while we wait for it.
                await asyncio.to_thread(self.journal.probe, self.clock())
                if self.rebuild is None:
                    raise RuntimeError("no way to rebuild the hub's state (HubRunner.rebuild)")
                # From here on nothing awaits: no message or web action sees a half-state.
                with storage_errors(self.journal.engine):
                    fresh = self.rebuild()
            except StorageUnavailable as e:
                log.warning("journal still unavailable (%s); next try in %.1f s", e, delay)
                continue
            except Exception:
                log.exception("rebuilding the hub's state failed; next try in %.1f s", delay)
                continue
            # In place: the web server and live views hold this HubApp object.
            fresh.registry.looked_up_elsewhere = True
            state = vars(self.app)
            state.clear()
            state.update(vars(fresh))
            log.warning("journal available again after %.1f s: state rebuilt (next position "
                        "%d), hub ready", time.monotonic() - started, self.app.pos + 1)
            # Ready (with the rebuilt state) goes out before any answer to what waited.
            await self._publish(self.app.retained_state(self.clock())
                                + self.app.rebirth_requests())
            self.storage_ok.set()
            for listener in self._listeners:  # live views: from the rebuilt state
                listener(Step())
            return

    async def _publish(self, publishes: list[Publish]) -> None:
        """Hand the messages to paho now, in order; not awaited one by one (waiting for
        each PUBACK would serialise the hub on round trips). One the broker has not
        acknowledged when the session ends is sent again after the next (re)connect
        (`_session_ended`). A device retries an unanswered event, but not a `print` whose
        `res` it already has: when the broker stalled and dropped the hub, that ticket
        would never be printed. A message sent twice is harmless: commands carry ids,
        replies seqs, retained state revs."""
        for p in publishes:
            if self._taps and self._answer_tap(p):
                continue
            if not self._hall.offer(p):
                self._send(p)

    # ---- a card's cases in the city (hub/city/features.py) ---------------------------------
    def _note_tap(self, topic: str, payload: bytes) -> None:
        """A kiosk's `pickup` by card or a window's `card`: its answer waits for the city's."""
        if b'"resident"' not in payload or not topic.endswith("/evt"):
            return
        try:
            msg = json.loads(payload)
        except ValueError:
            return  # the app refuses it as usual
        if (isinstance(msg, dict) and msg.get("type") in CARD_TAPS
                and isinstance(msg.get("resident"), str) and type(msg.get("seq")) is int):
            if len(self._taps) >= MAX_TAPS:  # answers never sent (cannot be): forget them
                self._taps.clear()
            self._taps[(topic.split("/")[-2], msg["seq"])] = msg["resident"]

    def _answer_tap(self, p: Publish) -> bool:
        """True when `p` is the answer to a noted tap: sent once the city answered."""
        parts = p.topic.split("/")
        if parts[-1] not in (RES_LEAF, ERR_LEAF):
            return False
        try:
            seq = json.loads(p.payload).get("seq")
        except ValueError:
            return False
        resident = self._taps.pop((parts[-2], seq), None) if type(seq) is int else None
        if resident is None:
            return False
        task = asyncio.create_task(self._with_city(p, resident))
        self._tap_tasks.add(task)
        task.add_done_callback(self._tap_tasks.discard)
        return True

    async def _with_city(self, p: Publish, resident: str) -> None:
        """`p` with the card's open cases in the city (`city`: null when the city does not
        answer in CARD_CASES_WAIT s, or this centre is cut off: then at once)."""
        rows: list[dict[str, Any]] | None = None
        try:
            assert self.card_cases is not None
            rows = await asyncio.wait_for(self.card_cases(resident), CARD_CASES_WAIT)
        except Exception as e:  # the answer goes without the city's part
            log.debug("city: a card's cases not answered: %r", e)
        body = json.loads(p.payload)
        body.pop("v", None)
        body["city"] = None if rows is None else [
            {k: r.get(k) for k in CITY_CASE_FIELDS} for r in rows
            if isinstance(r, dict)][:MAX_CITY_CASES]
        kind = RES_LEAF if p.topic.endswith("/" + RES_LEAF) else ERR_LEAF
        self._send(Publish(p.topic, proto.encode(kind, body), p.qos, p.retain))

    def _send(self, p: Publish) -> None:
        link = self._link
        if link is None or not link.publish(p):  # between sessions: the next sends it
            self._keep_unsent(p)
        else:
            self.published += 1

    @property
    def unsent(self) -> int:
        """Messages kept to send on the next connect (GET /metrics)."""
        return len(self._unsent)

    def _keep_unsent(self, p: Publish) -> bool:
        if p.retain:
            return False  # every retained topic is republished whole on each connect anyway
        if len(self._unsent) >= MAX_UNSENT:
            log.error("more than %d messages unsent: dropping %s", MAX_UNSENT, p.topic)
            return False
        self._unsent.append(p)
        return True

