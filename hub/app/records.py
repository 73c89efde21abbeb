"""A journal record applied: the one path from a record to the core and back out as
messages, the same live and in a replay, so a replayed hub ends in the very state (and
device replies) the live one had. A staff action (`operate`) becomes a record here too.
"""

from __future__ import annotations

import logging

from ..core import commands as c
from ..core import help_requests
from ..core.effects import HelpRequested
from ..core.rejected import Rejected
from ..devices import Publish
from ..store.journal import Record
from . import admission, day_close
from .case_archive import resident_view, with_restore
from .effects import render, result
from .outbound import res
from .state import AppState, Step

log = logging.getLogger("onewindow.hub")


def apply_record(app: AppState, rec: Record, live: c.Command | None = None) -> list[Publish]:
    """`live`: the command as `operate` was given it, where it says more than its record
    (a console's Help refused while one is open)."""
    app.settle_waits()  # the previous record's, before this one changes the core
    body = rec.body
    if body["op"] == "scan":
        return [res(app, rec.dev, rec.seq, "scan", **result(app, rec))] if rec.dev else []
    if body["op"] == "rate" and app.replaying:
        try:
            effects = day_close.apply(app, c.from_record(body), rec.ts)
        except Rejected as e:
            # Only a journal written before ratings were tied to service holds a rating
            # the core refuses (a second one, another window's, a ticket never served):
            # it stays out of the ratings, and the replay goes on.
            log.info("journal %d: old rating of %s left out: %s", rec.pos,
                     body.get("ticket"), e.code)
            return [res(app, rec.dev, rec.seq, "rate")] if rec.dev else []
        return render(app, effects, rec)
    if body["op"] in help_requests.OPS:  # the core decides; the record's position names it
        cmd = (help_requests.numbered(live, rec.pos) if live is not None
               else help_requests.from_record(body, rec.pos))
        effects = day_close.apply(app, cmd, rec.ts)
        return [res(app, rec.dev, rec.seq, "help") for e in effects
                if isinstance(e, HelpRequested) and rec.dev]  # a bare res (3.3)
    if body["op"] == "card":
        return [res(app, rec.dev, rec.seq, "card", **resident_view(app, body["resident"]))]
    if body["op"] == "case" and rec.dev is not None:
        # A card tapped at a window calling a pick-up ticket signed a hand-over off
        # (device_commands._hand_over): the node's `card` is answered with the case.
        day_close.apply(app, c.from_record(body), rec.ts)
        k = app.centre.cases[body["case"]]
        return [res(app, rec.dev, rec.seq, "card", state=k.state, cases=[
            {"id": k.id, "item": k.item, "due_day": k.due_day, "state": k.state}])]
    if body["op"] == "purge":  # an audit record (hub/store/retention.py): no state
        return []
    if body["op"] == admission.OP:  # a supervisor's switch of admission control
        admission.switch(app, body, rec.ts)
        # The wait predictor hears of every record (render tells it of the core's), or its
        # standing forecast counts a position it never saw and stops being used.
        app.learn_later(rec.ts, body["op"])
        return []
    if body["op"] in ("take", "remote_take"):  # refused ("stop") or its verdict kept
        admission.gate(app, rec)
    effects = day_close.apply(app, c.from_record(body), rec.ts)
    return render(app, effects, rec)


def operate(app: AppState, cmd: c.Command, now: float) -> Step:
    """An operation that comes from staff software rather than a device. Raises Rejected."""
    cmd = with_restore(app, cmd)
    rec = Record(app.pos + 1, now, None, None, cmd.to_record())
    publishes = apply_record(app, rec, cmd)
    app.pos = rec.pos
    return Step([rec], publishes)
