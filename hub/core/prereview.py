"""Pre-review that counts (预审 / 一次办成): what the kiosk's pre-review found, and the
clerk's "returned for materials" (退回补材料) at the window.

A material is named "ITEM.k": the k-th (0-based) of the item's catalog materials. Nothing
personal is journaled here: the kiosk knows no resident, and a returned ticket keeps the
resident token it already had.

* A take from the kiosk carries its review (`TakeTicket.review`, checked by `review_of`):
  the materials ticked, the required ones missing, whether tips were printed and whether
  the resident insisted ("queued anyway"). The ticket keeps it for the console.
* `PreReview`: a pre-review that ended without a ticket (the resident left to fetch what
  was missing): a wasted wait avoided. The day's count is state (`kiosk_left`: left, of
  which with a tips slip), handed to the history tables at the day's close (DayClosed).
* `ReturnForMaterials`: the resident being served lacks materials; the visit ends (the
  ticket is done, `returned` names what was missing) and opens no promised case. The
  report's one-trip rate counts a later visit for the item by the same resident token as
  a second trip.

The commands live here and join `commands.BY_OP` when this module is imported (the core's
`centre.py` does), so a journal replayed by record bodies (the staff report) applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from . import commands as c
from .effects import Effect, QueueChanged
from .model import Ticket, TicketState
from .rejected import Rejected
from .serving import finish
from .state import CentreState

MAX_MATERIALS = 64  # per list: far more than any item's and its extras' materials


@dataclass(frozen=True, slots=True)
class PreReview(c.Command):
    """A kiosk pre-review that ended without a ticket: the resident saw what was missing
    and left to fetch it. `items`: the item and the extra ones chosen; `ticked` /
    `missing`: materials as "ITEM.k"; `tips`: a tips slip was printed; `source`: the
    kiosk."""

    op: ClassVar[str] = "prereview"
    items: tuple[str, ...]
    ticked: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    tips: bool = False
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnForMaterials(c.WindowCommand):
    """退回补材料: the clerk `by` at `window` ends the visit of the resident being served
    (the ticket must be in service), `missing`: "ITEM.k" of the ticket's own items."""

    op: ClassVar[str] = "return_materials"
    missing: tuple[str, ...] = ()
    by: str | None = None


c.BY_OP.update({k.op: k for k in (PreReview, ReturnForMaterials)})
c._TUPLE_FIELDS.update({"items", "ticked", "missing"})


def check_materials(state: CentreState, items: tuple[str, ...], keys: Any, what: str
                    ) -> tuple[str, ...]:
    """`keys` as a tuple of "ITEM.k" of `items`, each once, or Rejected naming the first
    one that is not a material of those items."""
    if not isinstance(keys, (list, tuple)) or len(keys) > MAX_MATERIALS:
        raise Rejected("bad_field", f"{what}: 材料清单格式不对 / a list of materials")
    out: list[str] = []
    for key in keys:
        item, _, k = key.rpartition(".") if isinstance(key, str) else ("", "", "")
        mats = state.catalog.items[item].materials if item in items else ()
        if not (k.isascii() and k.isdigit() and int(k) < len(mats) and str(int(k)) == k):
            raise Rejected("unknown_material",
                           f"未知材料 {key!r} / {key!r} is not a material of "
                           f"{', '.join(items)}", material=str(key)[:40])
        if key not in out:
            out.append(key)
    return tuple(out)


def review_of(state: CentreState, cmd: c.TakeTicket) -> dict[str, Any] | None:
    """The take's review, checked and in its one form, or None for a take without one."""
    r = cmd.review
    if r is None:
        return None
    if not isinstance(r, dict) or set(r) - {"ticked", "missing", "tips", "insisted"}:
        raise Rejected("bad_field", "review: ticked, missing, tips, insisted")
    items = (cmd.item, *cmd.extra_items)
    ticked = check_materials(state, items, r.get("ticked", []), "ticked")
    missing = check_materials(state, items, r.get("missing", []), "missing")
    tips, insisted = r.get("tips", False), r.get("insisted", False)
    if not isinstance(tips, bool) or not isinstance(insisted, bool):
        raise Rejected("bad_field", "review: tips and insisted are true or false")
    if set(ticked) & set(missing):
        raise Rejected("bad_field", "review: a material is both ticked and missing")
    if missing and not insisted:
        raise Rejected("materials_missing",
                       "缺少必要材料 / required materials are missing: a ticket is taken "
                       "with them missing only when the resident insists")
    return {"ticked": list(ticked), "missing": list(missing), "tips": tips,
            "insisted": insisted}


def outcome(t: Ticket) -> str | None:
    """A ticket's pre-review outcome: "complete" (nothing required missing), "queued_anyway"
    (taken with materials missing), None (no pre-review: a button, a card, a phone)."""
    if t.review is None:
        return None
    return "queued_anyway" if t.review["missing"] else "complete"


def left(state: CentreState, cmd: PreReview, now: float) -> list[Effect]:
    if not cmd.items or len(cmd.items) > 1 + MAX_MATERIALS or len(set(cmd.items)) < len(
            cmd.items):
        raise Rejected("bad_field", "items: the item and its extra items, each once")
    for i in cmd.items:
        state.known_item(i)
    check_materials(state, cmd.items, cmd.ticked, "ticked")
    if not check_materials(state, cmd.items, cmd.missing, "missing"):
        raise Rejected("nothing_missing", "没有缺少的材料 / nothing was missing: a resident "
                                          "who leaves with every material is no turn-away")
    n, tips = state.kiosk_left
    state.kiosk_left = (n + 1, tips + bool(cmd.tips))
    return []


def return_for_materials(state: CentreState, cmd: ReturnForMaterials, now: float
                         ) -> list[Effect]:
    w = state.active_window(cmd.window)
    t = state.current_ticket(w)
    if t.state is not TicketState.SERVING:
        raise Rejected("not_serving", f"{t.number}号尚未开始办理 / {t.number} is not being "
                                      "served: start the service first")
    missing = check_materials(state, (t.item, *t.extra_items), cmd.missing, "missing")
    if not missing:
        raise Rejected("materials_required", "请选择缺少的材料 / name at least one missing "
                                             "material")
    t.returned, t.returned_by = missing, cmd.by
    t.history.append((now, "returned", w.number))
    return [*finish(state, t, TicketState.DONE, now, w), QueueChanged()]
