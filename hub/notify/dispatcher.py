"""Sending the notices the core made due, off the hub's event path.

The core decides (hub/core/notices.py) and the runner journals each due notice with the
step that made it due (hub/app/notices.py). The `Dispatcher` hears every committed step
(the runner's `subscribe`), puts each (notice, channel) it names on a bounded queue and a
few worker tasks send them: SMS over SMPP with the retry bound (retry.py), and the phone
page (`PageChannel`). Each outcome is journaled after the send (`NoticeOutcome`: sent,
failed after the bound, dropped when the ticket moved on before it went: "near" for a
ticket already called, anything for one no longer waiting or called). A hub restarted
between the two finds the notice still due in its replayed state and sends it again
(`sweep` at start and after every rebuild): what was confirmed is never sent twice.

A full queue does not block the hub: the notice stays due in the state, and the next
sweep (when the queue has drained) picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import notices as core
from ..core.booking import short_code as booking_short_code
from ..core.commands import NoticeOutcome
from ..core.rejected import Rejected
from ..store.journal import StorageUnavailable
from .channel import Channel, Notice, NoticeError, Outcome, PhoneRef, Sent, Texts
from .retry import RetryPolicy, deliver
from .texts import compose

if TYPE_CHECKING:
    from ..app import HubApp, Step
    from ..web.port import HubPort

__all__ = ["Dispatcher", "PageChannel"]

log = logging.getLogger("onewindow.hub.notify")

QUEUE = 1000  # (notice, channel) pairs waiting to be sent, at most
WORKERS = 4


class PageChannel:
    """The ticket's own phone page (/t/{ticket}): a notice is there once its outcome is
    journaled; the page (phone.js) shows it, plays a sound, vibrates and raises a system
    notification where the resident allowed it. Nothing can fail on the way."""

    name = "page"

    async def send(self, notice: Notice) -> Outcome:
        return Sent((f"page:{notice.id}",))


class Dispatcher:
    def __init__(self, app: HubApp, port: HubPort, channels: dict[str, Channel], *,
                 signature: str = "", attempts: int = 5, queue: int = QUEUE,
                 workers: int = WORKERS, draw: Callable[[], float] = random.random) -> None:
        self.app = app  # the runner rebuilds it in place: always the current state
        self.port = port
        self.channels = channels
        self.signature = signature
        self.policies = {name: RetryPolicy(attempts=attempts if name != "page" else 1)
                         for name in channels}
        self.draw = draw
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(queue)
        self._queued: set[tuple[str, str]] = set()
        self._overflow = False
        self._workers_n = workers
        self._workers: list[asyncio.Task[None]] = []
        self.settled = 0  # outcomes journaled by this process (tests, benchmark)

    # ---- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Hear every committed step and send what was due before this process started."""
        self.port.subscribe(self.on_step)
        for i in range(self._workers_n):
            self._workers.append(asyncio.create_task(self._work(), name=f"hub-notice-{i}"))
        self.sweep()

    async def close(self) -> None:
        for t in self._workers:
            t.cancel()
        for t in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._workers = []

    # ---- what to send --------------------------------------------------------------------
    def on_step(self, step: Step) -> None:
        """After a commit: the notices it made due. An empty step means the state was
        rebuilt from the journal: everything still due is looked at again."""
        if not step.records:
            self.sweep()
            return
        for rec in step.records:
            body = rec.body
            if body.get("op") == "notice":
                nid = core.notice_id(body["ticket"], body["kind"])
            elif body.get("op") == "booking_notice":  # hub/core/reminders.py
                nid = core.notice_id(body["booking"], "booking_reminder",
                                     body.get("occurrence", 0))
            elif body.get("op") == "case_notice":
                case = self.app.centre.cases.get(body["case"])
                if case is None:
                    continue
                nid = core.notice_id(case.ticket, body["kind"], body.get("occurrence", 0))
            else:
                continue
            for ch in body.get("channels", ()):
                self._enqueue(nid, ch)

    def sweep(self) -> None:
        """Every notice due and not settled on a channel, queued again."""
        for nid, ch in core.pending(self.app.centre):
            self._enqueue(nid, ch)

    def _enqueue(self, nid: str, ch: str) -> None:
        key = (nid, ch)
        if key in self._queued:
            return
        try:
            self._queue.put_nowait(key)
        except asyncio.QueueFull:
            if not self._overflow:
                log.error("notice queue full (%d): %s via %s waits for the next sweep",
                          self._queue.maxsize, nid, ch)
            self._overflow = True
            return
        self._queued.add(key)

    # ---- sending -------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                await self._one(*key)
            except Exception:
                log.exception("notice %s via %s: sending failed inside the hub", *key)
            finally:
                self._queued.discard(key)
                self._queue.task_done()
            if self._overflow and self._queue.empty():
                self._overflow = False
                self.sweep()

    async def _one(self, nid: str, ch: str) -> None:
        centre = self.app.centre
        n = centre.notices.get(nid)
        if n is None or n.channels.get(ch) != "due":
            return  # settled meanwhile (a sweep and a step named it both)
        channel = self.channels.get(ch)
        contact = centre.contacts.get(n.ticket)
        if channel is None or contact is None or contact.phone is None \
                or not core.wanted(centre, n):
            await self._settle(nid, ch, "dropped", 0)
            return
        try:
            notice = self._notice(n, contact)
        except NoticeError as e:
            log.error("notice %s: cannot be written (%s)", nid, e)
            await self._settle(nid, ch, "failed", 0)
            return
        delivery = await deliver(channel, notice, self.policies[ch], draw=self.draw)
        await self._settle(nid, ch, "sent" if isinstance(delivery.outcome, Sent) else "failed",
                           delivery.attempts)

    def _notice(self, n: core.Notice, contact: core.Contact) -> Notice:
        texts = notice_texts(self.app.centre, n, self.signature,
                             getattr(self.app, "booking_key", None))
        return Notice(n.id, n.ticket, n.kind, texts, PhoneRef(contact.phone or ""),  # type: ignore[arg-type]
                      contact.lang)  # type: ignore[arg-type]

    async def _settle(self, nid: str, ch: str, outcome: str, attempts: int) -> None:
        try:
            await self.port.submit(NoticeOutcome(nid, ch, outcome, attempts))
        except Rejected as e:  # settled by another worker, or the day closed under it
            log.info("notice %s via %s: outcome %s not kept: %s", nid, ch, outcome, e.code)
            return
        except StorageUnavailable:
            # Not journaled: still due in the state rebuilt after the outage, and sent
            # again then (the sweep after the rebuild).
            log.warning("notice %s via %s: %s but the journal is away", nid, ch, outcome)
            return
        self.settled += 1
        log.info("notice %s via %s: %s (%d attempt(s))", nid, ch, outcome, attempts)


def notice_texts(centre: Any, n: core.Notice, signature: str = "",
                 booking_key: bytes | None = None) -> Texts:
    """A due notice's words. A case's ticket may have left with its day: its number is
    the end of the case id ("20261123-A017" -> A017). A booking reminder quotes the
    booking's day, slot and its code as the resident holds it (signed under
    `booking_key`; the bare name without one). Raises NoticeError."""
    t = centre.tickets.get(n.ticket)
    number = t.number if t is not None else n.ticket.rpartition("-")[2]
    extra: dict[str, Any] = {}
    if n.kind == "booking_reminder":
        b = centre.bookings.get(n.ticket)
        if b is None:
            raise NoticeError(f"booking {n.ticket}: not held")
        local = centre.calendar.local_time(b.slot)
        code = (booking_short_code(booking_key, centre.config.centre_id, b.code)
                if booking_key is not None else b.code)
        extra = {"day": f"{local:%Y-%m-%d}", "slot": f"{local:%H:%M}", "code": code}
    if n.kind == core.RETURNED:
        case = centre.cases.get(n.ticket)
        item = centre.catalog.items.get(case.item) if case is not None else None
        if item is None:
            raise NoticeError(f"case {n.ticket}: not held, or its item left the catalog")
        mats = item.materials
        extra = {"item": _names(item.name), "materials": tuple(
            _names(mats[k].name) for k in n.materials if 0 <= k < len(mats))}
    return compose(n.kind, ticket=number, signature=signature,  # type: ignore[arg-type]
                   window=n.window, ahead=n.ahead, minutes=n.minutes, **extra)


def _names(text: Any) -> tuple[str, str, str]:
    return (text.zh, text.traditional, text.en)


def page_notices(app: Any, ticket: str) -> list[dict[str, Any]]:
    """What the phone page shows of a ticket's (or its case's) notices: those sent to it,
    in the three languages (no signature, nothing personal)."""
    centre = app.centre
    if ticket not in centre.contacts or (ticket not in centre.tickets
                                         and ticket not in centre.cases
                                         and ticket not in centre.bookings):
        return []
    out = []
    for n in core.of_ticket(centre, ticket, "page"):
        try:
            texts = notice_texts(centre, n, "", getattr(app, "booking_key", None))
        except NoticeError:
            continue
        out.append({"id": n.id, "kind": n.kind, "zh_CN": texts.zh_cn, "zh_TW": texts.zh_tw,
                    "en": texts.en})
    return out
