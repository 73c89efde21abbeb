"""The app's state from the journal, and as plain data: `replay` applies journal records
with nothing rendered but each device's last reply, `snapshot` / `restore` are the state at
a journal position (stored by hub/store/snapshot.py, loaded first at start-up by
hub/startup.py, which replays only the records after it), and `reload` rebuilds the state
after a failed message may have left it half-changed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from ..core.centre import Centre
from ..core.snapshot import centre_state, restore_centre
from ..forecast.wait import Estimate, predictor_to_dict, restore_predictor
from ..store.history import DayFacts
from ..store.journal import Record
from .outbound import to_device
from .records import apply_record
from .state import HALL_CALLS, AppState, Call

log = logging.getLogger("onewindow.hub")

# What a `reload` keeps of the app it rebuilds: what the journal does not hold.
KEPT_BY_RELOAD = ("registry", "fleet", "refused", "boot", "status_url", "resync_n",
                  "font_warned", "history_sink", "closed_days", "snapshot_pos", "case_archive")


def replay(app: AppState, records: Iterable[Record],
           replies: Mapping[str, int] | None = None) -> int:
    """Rebuild state from the journal (after `restore`, from the snapshot's position on).

    Nothing is rendered but device replies: the last reply of each device is refilled so
    that a retry crossing a hub restart still gets its original answer. `replies`: each
    device's last journal position among `records` (`SnapshotStore.last_by_device`);
    only those records are rendered. None: every device record is (`reload`)."""
    n = 0
    app.replaying = True
    try:
        for rec in records:
            app.pos = rec.pos
            keep = rec.dev is not None and rec.seq is not None and (
                replies is None or replies.get(rec.dev) == rec.pos)
            app.quiet = not keep
            publishes = apply_record(app, rec)
            if rec.dev is not None and rec.seq is not None:
                dev = app.registry.get(rec.dev)
                if dev is not None:
                    dev.last_seq = max(dev.last_seq, rec.seq)
                    if keep:
                        dev.last_reply = [p for p in publishes if to_device(p, rec.dev)]
            n += 1
    finally:
        app.replaying = app.quiet = False
    return n


def snapshot(app: AppState, case_columns: bool = False) -> dict[str, Any]:
    """All the state a replay up to `pos` rebuilds, as plain data (hub/store/snapshot.py
    stores it): the core, the app's own, the wait predictor's learned state and each
    device's last seq and reply. `case_columns`: the hub's checkpoint's form of the cases
    (core/snapshot.py `centre_state`)."""
    return {
        "pos": app.pos,
        "centre": centre_state(app.centre, case_columns=case_columns),
        "app": {
            "calls": [[x.ticket, x.window, x.at] for x in app.calls],
            "window_rev": [[n, r] for n, r in app.window_rev.items()],
            "hall_rev": app.hall_rev,
            "services": [dict(r) for r in app.services],
            "case_events": [dict(r) for r in app.case_events],
            "pauses": [dict(r) for r in app.pauses],
            "closed_days": [asdict(f) for f in app.closed_days],  # not yet written
            "refused": list(app.refused),
            "issue_waits": {k: [e.median, e.mean, e.lo, e.hi, e.raw_lo, e.raw_hi]
                            for k, e in app.issue_waits.items()},
            "admission_switch": app.admission_switch,
        },
        "waits": predictor_to_dict(app.waits),
        "devices": app.registry.export_seqs(),
    }


def restore(app: AppState, snap: dict[str, Any]) -> None:
    """Load a `snapshot()` into this app, freshly made for the same centre (nothing
    replayed yet). Raises (KeyError, ValueError, TypeError) on a snapshot that does not
    fit; the caller then falls back to an older one or a full replay on a fresh app."""
    a = snap["app"]
    restore_centre(app.centre, snap["centre"])
    restore_predictor(app.waits, snap["waits"])
    app.pos = int(snap["pos"])
    app.calls = deque((Call(t, w, at) for t, w, at in a["calls"]), maxlen=HALL_CALLS)
    app.window_rev = {int(n): int(r) for n, r in a["window_rev"]}
    app.hall_rev = int(a["hall_rev"])
    # Snapshots older than the past days' tables have none of these.
    app.services = [dict(r) for r in a.get("services", [])]
    app.case_events = [dict(r) for r in a.get("case_events", [])]
    app.pauses = [dict(r) for r in a.get("pauses", [])]  # none before pause reasons
    app.closed_days = [DayFacts(**f) for f in a.get("closed_days", [])]
    app.refused = deque(a["refused"], maxlen=app.refused.maxlen)
    app.issue_waits = {k: Estimate(*v) for k, v in a["issue_waits"].items()}
    # Snapshots taken before admission could be switched from the dashboard have none.
    sw = a.get("admission_switch")
    app.admission_switch = None if sw is None else {
        "mode": str(sw["mode"]), "by": str(sw["by"]), "at": float(sw["at"])}
    app.registry.restore_seqs(snap["devices"])


def reload(app: AppState, records: Iterable[Record], snap: dict[str, Any] | None = None) -> int:
    """Rebuild the state from the journal after a failure left it possibly half-changed
    (`damaged`): a fresh app's state, replayed, as a restart would. What is not in the
    journal stays (KEPT_BY_RELOAD): the device registry (and each device's last seq and
    reply, since refusals use up seqs without a record), fleet health, refused commands,
    this boot. `snap`: a stored snapshot to start from (`records` are then those after
    it), so a failed message does not cost a replay of the whole history."""
    keep = {dev.spec.id: (dev.last_seq, dev.last_reply)
            for dev in app.registry.devices.values()}
    fresh = type(app)(Centre(app.centre.catalog, app.centre.config), app.registry,
                      app.boot, app.status_url)
    for name, value in vars(fresh).items():
        if name not in KEPT_BY_RELOAD:
            setattr(app, name, value)
    if snap is not None:
        restore(app, snap)
    n = replay(app, records)
    for dev in app.registry.devices.values():
        if dev.spec.id in keep:
            dev.last_seq, dev.last_reply = keep[dev.spec.id]
    app.damaged = False
    log.warning("state rebuilt from %d journal records after a failed message", n)
    return n
