"""The engine's hands: each command the simulator's people decide is sent as the matching
event by the device it names (a box or the kiosk takes a ticket, a keypad calls, starts,
completes, transfers, pauses, rates ...) to the real hub, and the engine reads the hub's
answer; the engine's day is stepped in a worker thread against the demo's clock.

Bookings and remote tickets (hub/sim/bookings.py) reach the hub the way its web pages send
them: a booking and a phone's remote take are submitted to the running hub as its booking
and remote pages submit them (`HubRunner.submit`: journaled, with the notices they make
due); a check-in is the kiosk's `checkin` event carrying the booking's signed code, as its
scanner reads the QR."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import aiomqtt
import simpy

from ...hub.core import booking
from ...hub.core import commands as c
from ...hub.core.centre import Centre
from ...hub.core.effects import TicketIssued
from ...hub.core.rejected import Rejected
from ...hub.runner import HubRunner
from ...hub.sim.bookings import SimAhead
from ...hub.sim.engine import Day, Engine, Rating
from ...hub.sim.metrics import DayResult
from ..simdevice import DeviceError, SimDevice
from .scenario import Plan, SimClock

log = logging.getLogger("onewindow.demo")

REPLY_TIMEOUT = 15.0  # real s the engine waits for the hub (a device retries within that)
# Commands whose refusal the engine handles itself (a take refused, nobody waiting, no
# window for a transfer); any other refusal is a surprise and is counted as a device error.
ENGINE_HANDLES = (c.TakeTicket, c.CallNext, c.Transfer, c.Book, c.CheckIn, c.RemoteTake)
# Submitted as the hub's web pages submit them (no device event).
SUBMITTED = (c.Book, c.RemoteTake)

_WINDOW_EVENTS: dict[type[c.Command], str] = {
    c.CallNext: "call", c.Recall: "recall", c.Start: "start", c.Complete: "complete",
    c.Pause: "pause", c.Resume: "resume", c.CloseWindow: "close",
}


def device_event(cmd: c.Command, centre: Centre) -> tuple[str, dict[str, Any]]:
    """(type, fields) of the event a device sends for `cmd`: the inverse of the mapping in
    hub/app/device_commands.py `to_command`, so the hub journals the very command the
    engine decided."""
    if isinstance(cmd, c.TakeTicket):
        return "take", _present(item=cmd.item, priority=cmd.priority, resident=cmd.resident,
                                appointment_at=cmd.appointment_at,
                                items=list(cmd.extra_items) or None)
    if isinstance(cmd, Rating):  # a window device rates by the number it shows
        return "rate", {"window": cmd.window, "ticket": centre.tickets[cmd.ticket].number,
                        "score": cmd.score}
    if isinstance(cmd, c.OpenWindow):
        return "open", _present(window=cmd.window, clerk=cmd.clerk)
    if isinstance(cmd, c.Skip):
        return "skip", _present(window=cmd.window, requeue=cmd.requeue)
    if isinstance(cmd, c.Transfer):
        return "transfer", _present(window=cmd.window, to_window=cmd.to_window,
                                    to_item=cmd.to_item, note=cmd.note)
    typ = _WINDOW_EVENTS.get(type(cmd))
    if typ is None or not isinstance(cmd, c.WindowCommand):
        raise ValueError(f"no device event for {cmd.op!r}")
    return typ, {"window": cmd.window}


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Actuator:
    """The engine's `act`: called in the engine's thread, it has the named device send the
    command's event from the event loop and blocks until the hub answers. A take answers
    with the ticket the hub issued; a refusal the engine expects becomes `Rejected`, as the
    core would raise it; any other failure is counted and the engine carries on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, devices: dict[str, SimDevice],
                 centre: Centre, timeout: float = REPLY_TIMEOUT,
                 runner: HubRunner | None = None) -> None:
        self.loop, self.devices, self.centre, self.timeout = loop, devices, centre, timeout
        self.runner = runner
        self.errors: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # the hub's refusals the engine handles, by code

    def __call__(self, cmd: c.Command, now: float, dev: str | None) -> list[Any]:
        if isinstance(cmd, SUBMITTED):
            return self._submit(cmd)
        if isinstance(cmd, c.CheckIn):  # the kiosk's scanner types the QR text
            key = self.runner.app.booking_key if self.runner is not None else None
            if key is None or cmd.booking is None:
                self.refused["no_booking_key"] += 1
                raise Rejected("no_booking_key", "the demo hub has no booking key")
            typ, fields = "checkin", {"code": booking.qr_text(key, self.centre.config.centre_id,
                                                              cmd.booking)}
            dev = cmd.source
        else:
            typ, fields = device_event(cmd, self.centre)
        device = self.devices[dev or ""]
        fut = asyncio.run_coroutine_threadsafe(device.send(typ, **fields), self.loop)
        try:
            reply = fut.result(self.timeout)
        except DeviceError as e:
            if isinstance(cmd, ENGINE_HANDLES):
                self.refused[str(e.code)] += 1
                raise Rejected(str(e.code), str(e)) from None
            self.errors[str(e.code)] += 1
            return []
        except (TimeoutError, aiomqtt.MqttError) as e:
            fut.cancel()
            self.errors[type(e).__name__] += 1
            if isinstance(cmd, ENGINE_HANDLES):
                raise Rejected("no_answer", str(e)) from None
            return []
        if isinstance(cmd, c.TakeTicket | c.CheckIn):
            # The hub applied the take before it answered, so the number is in its state.
            t = self.centre.by_number[reply["ticket"]]
            return [TicketIssued(t.id, int(reply.get("ahead", 0)),
                                 float(reply.get("wait", -1)), dev)]
        return []

    def _submit(self, cmd: c.Command) -> list[Any]:
        if self.runner is None:
            raise ValueError(f"{cmd.op} is submitted to a hub's runner: none given")
        fut = asyncio.run_coroutine_threadsafe(self.runner.submit(cmd), self.loop)
        try:
            fut.result(self.timeout)
        except Rejected as e:
            self.refused[e.code] += 1
            raise
        except TimeoutError as e:
            fut.cancel()
            self.errors[type(e).__name__] += 1
            raise Rejected("no_answer", str(e)) from None
        if isinstance(cmd, c.Book):  # the core named it by its serial (as the web does)
            return [booking.BookingChanged(f"B{self.centre.booking_serial:04d}")]
        resident = getattr(cmd, "resident", None)
        t = next(t for t in reversed(self.centre.tickets.values())
                 if t.source == "remote" and t.resident == resident)
        return [TicketIssued(t.id, 0, -1.0, None)]


def drive(env: simpy.Environment, clock: SimClock, stop: threading.Event) -> None:
    """Step the engine's day (in a worker thread) as the demo clock reaches each event.

    A plain Environment stepped against the one clock the hub also reads, rather than
    simpy.rt.RealtimeEnvironment: its sleeps cannot be interrupted by Ctrl-C, and it would
    keep a second start time of its own. The hub stamps each operation with that clock:
    never earlier than the engine's time, and at most MAX_AHEAD later (see SimClock)."""
    while not stop.is_set():
        t = env.peek()
        if t == math.inf:
            return  # every window closed and nobody is coming: the day is over
        clock.engine = t  # a float store: atomic, read by the event loop's thread
        ahead = clock.real_until(t)
        if ahead > 0:
            stop.wait(ahead)
            continue
        env.step()


class Simulation:
    """The simulator's day acted out on the demo's devices, stepped in a worker thread.

    The engine thread reads the hub's Centre (it looks up the ticket a call brought, the
    ticket a number names, a window's state) while the event loop thread mutates it. That
    is safe enough here: every read is a single dict lookup or attribute read, atomic under
    the GIL; the windows dict never changes size; and what the engine reads right after a
    command was settled by the hub before it answered, with nobody else acting on those
    windows (unless a demo user presses buttons on the web pages, which the actuator
    survives). All the engine's own state stays in its thread until it has finished."""

    def __init__(self, runner: HubRunner, clock: SimClock, p: Plan,
                 devices: dict[str, SimDevice], seed: int, clerks: list[str],
                 bookings: bool = False) -> None:
        self.centre = runner.app.centre
        self.clock = clock
        self.plan = p
        self.devices = devices
        self.actuator = Actuator(asyncio.get_running_loop(), devices, self.centre,
                                 runner=runner)
        # `bookings`: residents book and take numbers remotely as the simulator models
        # them; the hub's own notifier sends the notices remote tickets call for.
        self.engine = Engine(self.centre.catalog, p.layout, centre=self.centre,
                             act=self.actuator, clerk_seed=seed,
                             ahead=SimAhead(seed=seed, notices=False) if bookings else None)
        # The same clerks (speeds, home lines) under names fit for the screen.
        self.engine.clerks = {n: replace(k, name=name) for (n, k), name
                              in zip(sorted(self.engine.clerks.items()), clerks, strict=True)}
        self.day: Day = self.engine.start_day(p.day, p.weather, seed, scale=p.scale,
                                              options=p.options)
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def errors(self) -> Counter[str]:
        return self.actuator.errors

    def start(self) -> None:
        self._task = asyncio.create_task(
            asyncio.to_thread(drive, self.day.env, self.clock, self._stop), name="demo-engine")

    @property
    def day_over(self) -> bool:
        return self._task is not None and self._task.done()

    async def finished(self) -> None:
        """Until the engine's day is over (run to its end, or failed: `stop` says which)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        """Stop the engine after its current command (the hub must still be running)."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await self._task
        except Exception:
            log.exception("the simulated people stopped with an error")
            self.errors["crashed"] += 1
        self._task = None

    def result(self) -> DayResult:
        """The engine's account of the day (call after `stop`)."""
        return self.day.result()


