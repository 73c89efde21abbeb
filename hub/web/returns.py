"""The console's side of pre-review that counts (预审 / 一次办成, hub/core/prereview.py).

What the clerk sees of the resident at the window: the kiosk's pre-review of the ticket's
materials (ticked, missing, tips printed, queued anyway) and the items often done with it
(多问一句: the catalog's and the journal's, hub/web/related.py). And "returned for materials"
(退回补材料): the console's `return` action ends the visit (journaled with the clerk) and
answers with the tips slip: the tips page (printable, with the QR the resident can scan)
and, where a printing device (a kiosk or button box) is registered at that window, the slip
printed there.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from ..core.model import Ticket
from ..core.prereview import ReturnForMaterials, outcome
from .pubkit import base_url, qr_svg
from .related import Related
from .site import Site
from .slips import tips_publish
from .traditional import Traditional

PRINTERS = ("kiosk", "box")


class Returns:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.related = Related(site)
        self.traditional = Traditional(site.hub.centre.catalog)
        self._print_n = itertools.count(1)

    # ---- the window snapshot's part ------------------------------------------------------
    def view(self, t: Ticket) -> dict[str, Any]:
        """`prereview` (None when the ticket had none) and `related` for the console."""
        cat = self.site.hub.centre.catalog
        items = [t.item, *t.extra_items]
        review = t.review or {}
        ticked, missing = set(review.get("ticked", ())), set(review.get("missing", ()))
        mats = []
        for i in items:
            for k, m in enumerate(cat.items[i].materials):
                key = f"{i}.{k}"
                mats.append({"key": key, "item": i, "zh": m.name.zh,
                             "zh_tw": m.name.traditional, "en": m.name.en,
                             "required": m.required,
                             "status": ("ticked" if key in ticked else
                                        "missing" if key in missing else None)})
        on_ticket = set(items)
        related = [{"id": r["item"].id, "zh": r["item"].name.zh,
                    "zh_tw": r["item"].name.traditional, "en": r["item"].name.en,
                    "seen": r["seen"]}
                   for r in self.related.of(cat.items[t.item]) if r["item"].id not in on_ticket]
        return {
            "prereview": None if t.review is None else {
                "outcome": outcome(t), "tips": bool(review.get("tips")),
                "insisted": bool(review.get("insisted"))},
            "review_materials": mats,
            "related": related,
        }

    # ---- returned for materials ----------------------------------------------------------
    @staticmethod
    def command(n: int, body: dict[str, Any], by: str) -> ReturnForMaterials:
        missing = body.get("missing")
        if not isinstance(missing, list) or not all(isinstance(x, str) for x in missing):
            raise ValueError("missing: a list of materials (\"ITEM.k\") / 缺少的材料清单")
        return ReturnForMaterials(n, tuple(missing), by)

    @staticmethod
    def tips_path(t: Ticket) -> str:
        """The tips page of a returned ticket, on this hub: the console's link."""
        ids = ",".join([t.item, *t.extra_items])
        return f"/tips?items={quote(ids)}&miss={quote(','.join(t.returned))}"

    def tips_url(self, request: Request, t: Ticket) -> str:
        """... where phones reach it: the QR's (the configured ticket QR base)."""
        return base_url(self.site, request) + self.tips_path(t)

    def missing_of(self, t: Ticket) -> list[dict[str, Any]]:
        """Per item, the materials it was returned for (the slip's rows)."""
        cat = self.site.hub.centre.catalog
        out = []
        for i in [t.item, *t.extra_items]:
            item = cat.items[i]
            mats = [item.materials[int(k.rpartition(".")[2])] for k in t.returned
                    if k.rpartition(".")[0] == i]
            if mats:
                out.append({"item": i, "zh": item.name.zh, "en": item.name.en,
                            "materials": [{"zh": m.name.zh, "en": m.name.en} for m in mats]})
        return out

    async def slip(self, request: Request, n: int, t: Ticket) -> dict[str, Any]:
        """The tips slip of ticket `t`, just returned at window `n`: offered (the page and
        its QR) and printed where a printing device is registered at the window."""
        url = self.tips_url(request, t)
        hub = self.site.hub
        printers = sorted(d.spec.id for d in hub.registry.devices.values()
                          if d.spec.role in PRINTERS and d.spec.window == n)
        if printers:
            await self.site.send([tips_publish(
                self.site, self.traditional, printers[0], self.missing_of(t), url,
                f"{hub.boot}.return{next(self._print_n)}")])
        return {"ticket": t.id, "number": t.number, "missing": list(t.returned),
                "tips_url": url, "tips_path": self.tips_path(t), "qr": qr_svg(url, 4),
                "printed_on": printers[0] if printers else None}
