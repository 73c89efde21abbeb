"""Pre-review and return visits in the simulator (预审 / 一次办成, hub/core/prereview.py).

Some residents come without a required material (`ResidentModel.missing_chance`). At the
kiosk the pre-review catches a share of them (`catch`: they tick honestly); of those most
leave to fetch it (journaled as the kiosk's `PreReview`: a wasted wait avoided) and a few
take a ticket anyway (`queue_anyway`: the take carries the review). Everyone else missing
a material finds out at the window after the wait: the clerk returns the ticket for
materials (`ReturnForMaterials`, outcome "incomplete"). Of the residents sent away either
way, `come_back` return `back_days` working days later with the material (a few still
without: `missing_again`), as new visits of that day, with their resident token: so the
report's one-trip rate and repeat visits, and the simulator's own one-trip rate, come out
of the model rather than being set.

Only the engine's own core runs this (`onewindow sim`, synthetic history); on a live hub
(the demo) the kiosk and keypads are simulated devices, which have no pre-review and no
return key, and residents are served as before.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace
from typing import Any

from ..core.catalog import Item
from .model import Visit, at_local

KIOSK = "kiosk-1"
# A visit's outcome when the kiosk's pre-review sent the resident away before a ticket.
KIOSK_LEFT = "kiosk_left"


@dataclass(frozen=True, slots=True)
class PreReviewModel:
    catch: float = 0.7  # of kiosk users missing a material, share the pre-review catches
    queue_anyway: float = 0.15  # ... of whom still take a ticket
    come_back: float = 0.9  # of those sent away (kiosk or window), share who come back
    back_days: tuple[int, int] = (1, 5)  # working days later, uniform
    missing_again: float = 0.05  # back, and still missing something


def _rng(v: Visit, what: str) -> random.Random:
    # Per visit and purpose: the population's own draws stay as they were (common random
    # numbers across layouts and policies).
    return random.Random(f"{what}:{v.n}:{v.at:.3f}:{v.item}")


def missing_keys(item: Item, v: Visit) -> tuple[str, ...]:
    """Which required material this resident lacks ("ITEM.k")."""
    req = [k for k, m in enumerate(item.materials) if m.required]
    if not req:
        return ()
    return (f"{item.id}.{_rng(v, 'which').choice(req)}",)


def review(items: list[Item], missing: tuple[str, ...], insisted: bool) -> dict[str, Any]:
    """A kiosk take's review: every required material ticked but the missing ones."""
    ticked = [f"{i.id}.{k}" for i in items for k, m in enumerate(i.materials)
              if m.required and f"{i.id}.{k}" not in missing]
    return {"ticked": ticked, "missing": list(missing), "tips": False, "insisted": insisted}


def at_kiosk(model: PreReviewModel, v: Visit) -> str:
    """What the kiosk's pre-review does with a resident missing a material: "left",
    "queued_anyway" or "missed" (not caught: they take a ticket as if complete)."""
    r = _rng(v, "kiosk")
    if r.random() >= model.catch:
        return "missed"
    return "queued_anyway" if r.random() < model.queue_anyway else "left"


class ComeBacks:
    """Residents sent away, due back on a later working day."""

    def __init__(self, model: PreReviewModel) -> None:
        self.model = model
        self.due: dict[dt.date, list[Visit]] = {}

    def send_away(self, v: Visit, day: dt.date, add_workdays: Any) -> None:
        r = _rng(v, "back")
        if r.random() >= self.model.come_back:
            return
        back = add_workdays(day, r.randint(*self.model.back_days))
        minute = r.uniform(9 * 60, 15.5 * 60)
        at = at_local(back, dt.time(int(minute // 60), int(minute % 60)))
        again = replace(v.fresh(), at=at, pressed=v.item, extra=None, appointment_at=None,
                        priority="normal" if v.priority == "appointment" else v.priority,
                        absent=0, missing=r.random() < self.model.missing_again,
                        trip=v.trip + 1, after_return=v.after_return or v.outcome != KIOSK_LEFT)
        self.due.setdefault(back, []).append(again)

    def take(self, day: dt.date, first_n: int) -> list[Visit]:
        """The day's returning residents, numbered after its other visits."""
        out = self.due.pop(day, [])
        return [replace(v, n=first_n + k) for k, v in enumerate(out)]
