"""Window layouts of the same catalog, as `CentreConfig` variants the real core runs.

* ``dedicated`` — before the one-window reform: each window belongs to department lines
  (社保, 医保, 民政 ...) and serves only their items, payments and cards included. Lines are
  shared out by expected workload (largest first onto the least-loaded window; with more
  windows than lines, the busiest lines get the extra windows).
* ``comprehensive`` — 一窗通办: every window serves every item (skills ``*``).
* ``mixed`` — comprehensive windows plus specialised ones (a card window, a cashier; a
  pick-up window from 10 windows on) that serve their own items first and help otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.catalog import COMPREHENSIVE, Catalog
from ..core.centre_config import CentreConfig, WindowSpec
from ..core.policy import OrderingPolicy
from .model import ResidentModel
from .service import ServiceModel

LAYOUTS = ("dedicated", "comprehensive", "mixed")


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    config: CentreConfig
    home_lines: tuple[str | None, ...]  # per window (in window order): the clerk's line

    @property
    def kinds(self) -> str:
        """'5 comprehensive + 1 card + 1 cash' and the like."""
        counts: dict[str, int] = {}
        for w in self.config.windows:
            key = w.kind if w.skills is None or w.skills == ("*",) else "line"
            counts[key] = counts.get(key, 0) + 1
        return " + ".join(f"{n} {k}" for k, n in counts.items())


def line_load(catalog: Catalog, residents: ResidentModel | None = None,
              service: ServiceModel | None = None) -> dict[str, float]:
    """Expected service minutes per visit, by line (relative workload)."""
    r, s = residents or ResidentModel(), service or ServiceModel()
    total = sum(r.popularity(i) for i in catalog.items.values())
    load = dict.fromkeys(catalog.lines, 0.0)
    for i in catalog.items.values():
        load[i.line] += r.popularity(i) / total * s.mean_minutes(i)
    return load


def dedicated(catalog: Catalog, n: int, centre_id: str = "sim", **kw: Any) -> Layout:
    load = line_load(catalog)
    lines = sorted(load, key=lambda k: -load[k])
    groups: list[list[str]] = [[] for _ in range(n)]
    if n >= len(lines):
        counts = dict.fromkeys(lines, 1)
        for _ in range(n - len(lines)):  # D'Hondt: the line with most load per window
            best = max(lines, key=lambda k: load[k] / counts[k])
            counts[best] += 1
        i = 0
        for line in lines:
            for _ in range(counts[line]):
                groups[i].append(line)
                i += 1
    else:
        acc = [0.0] * n
        for line in lines:
            j = min(range(n), key=lambda k: acc[k])
            groups[j].append(line)
            acc[j] += load[line]
    windows = tuple(WindowSpec(i + 1, COMPREHENSIVE, tuple(g)) for i, g in enumerate(groups))
    return Layout("dedicated", _config(centre_id, windows, **kw), tuple(g[0] for g in groups))


def comprehensive(catalog: Catalog, n: int, centre_id: str = "sim", **kw: Any) -> Layout:
    windows = tuple(WindowSpec(i + 1, COMPREHENSIVE, ("*",)) for i in range(n))
    return Layout("comprehensive", _config(centre_id, windows, **kw), (None,) * n)


def mixed(catalog: Catalog, n: int, centre_id: str = "sim", **kw: Any) -> Layout:
    """Specialised windows in proportion to the load only they may serve (one at least);
    the pick-up window from 10 windows on."""
    r, s = ResidentModel(), ServiceModel()
    total = sum(r.popularity(i) for i in catalog.items.values())
    per_visit = sum(r.popularity(i) / total * s.mean_minutes(i) for i in catalog.items.values())
    kinds_: list[str] = []
    for kind in (k for k in ("card", "cash", "pickup") if k in catalog.window_kinds):
        if kind == "pickup" and n < 10:
            continue
        share = sum(r.popularity(i) / total * s.mean_minutes(i) for i in catalog.items.values()
                    if kind in i.window_kinds) / per_visit
        kinds_ += [kind] * max(1, math.ceil(n * share))
    kinds_ = kinds_[: max(0, n - 1)]
    kinds = [COMPREHENSIVE] * (n - len(kinds_)) + kinds_
    windows = tuple(WindowSpec(i + 1, k) for i, k in enumerate(kinds))
    return Layout("mixed", _config(centre_id, windows, **kw), (None,) * n)


def _config(centre_id: str, windows: tuple[WindowSpec, ...], policy: OrderingPolicy | None = None,
            holidays: frozenset[str] = frozenset(), workdays: frozenset[str] = frozenset(),
            **_: object) -> CentreConfig:
    return CentreConfig(centre_id, windows, policy or OrderingPolicy(), holidays=holidays,
                        workdays=workdays)


BUILDERS = {"dedicated": dedicated, "comprehensive": comprehensive, "mixed": mixed}


def layout(name: str, catalog: Catalog, n: int, **kw: Any) -> Layout:
    try:
        return BUILDERS[name](catalog, n, **kw)
    except KeyError:
        raise ValueError(f"unknown layout {name!r}; one of {', '.join(LAYOUTS)}") from None
