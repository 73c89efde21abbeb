"""`onewindow report`: read the journal, compute the staff report, write HTML and CSV.

Where the window configuration comes from matters: the replay must pick the same tickets
the hub picked. A journal the simulator wrote states its layout (`meta` row `sim`), and
that one is used; otherwise the centre's own `--config` is.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..core.catalog import Catalog
from ..core.centre_config import CentreConfig
from ..store.journal import Journal, meta
from .staff import (
    Report,
    ReportSettings,
    collect,
    compute,
    facts_from_history,
    month_span,
)
from .trips import from_tables as trips_from_tables


class ReportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    catalog: Catalog
    config: CentreConfig
    settings: ReportSettings
    origin: str  # "sim" or the config file


def _sim_meta(journal: Journal) -> dict[str, Any] | None:
    with journal.engine.connect() as conn:
        row = conn.execute(select(meta.c.value).where(meta.c.key == "sim")).first()
    return json.loads(row[0]) if row else None


def sim_config(catalog: Catalog, info: dict[str, Any]) -> CentreConfig:
    """The CentreConfig the simulator ran with (hub/sim/history.py: write_history)."""
    from ..sim.model import calendar_sets
    from ..sim.policies import layout as make_layout

    start, end = dt.date.fromisoformat(info["start"]), dt.date.fromisoformat(info["end"])
    hol, work = calendar_sets(start - dt.timedelta(days=7), end + dt.timedelta(days=400))
    return make_layout(info["layout"], catalog, int(info["windows"]),
                       centre_id=info.get("centre", "sim"), holidays=hol,
                       workdays=work).config


def load_source(config: Path | None, db: str | None, catalog_path: Path | None,
                weights: dict[str, float] | None = None) -> Source:
    from .. import config as hub_config
    from ..catalog import load_catalog

    cfg = None
    section: dict[str, Any] = {}
    if config is not None:
        try:
            cfg = hub_config.load(config)
            section = tomllib.loads(config.read_text(encoding="utf-8")).get("report", {})
        except hub_config.ConfigError as e:
            raise ReportError(f"configuration error: {e}") from e
    url = db or (cfg.database_url if cfg else None)
    if not url:
        raise ReportError("give --config centre.toml or --db URL")
    catalog = load_catalog(catalog_path or (cfg.catalog_path if cfg else None))
    if weights:
        section = {**section, "weights": {**section.get("weights", {}), **weights}}
    try:
        settings = ReportSettings.from_dict(section)
    except (TypeError, ValueError) as e:
        raise ReportError(f"[report]: {e}") from e
    journal = Journal(url)
    try:
        info = _sim_meta(journal)
    finally:
        journal.close()
    if info is not None:
        return Source(url, catalog, sim_config(catalog, info), settings, "sim")
    if cfg is None:
        raise ReportError("this journal was not written by the simulator: give --config "
                          "centre.toml (the window configuration the hub ran with)")
    return Source(url, catalog, cfg.centre, settings, str(config))


def build(src: Source, month: str, replay: bool = False) -> Report:
    """The month's report: from the past days' tables by SQL when they hold the whole month
    (hub/store/history.py), else (or with `replay`) by replaying the journal."""
    try:
        start, end = month_span(month, src.config.utc_offset_minutes)
    except ValueError as e:
        raise ReportError(f"--month must look like 2026-10, not {month!r}") from e
    journal = Journal(src.url)
    try:
        rows = None if replay else history_rows(journal, start, end,
                                                src.config.utc_offset_minutes)
        if rows is not None:
            facts = facts_from_history(rows, start, end, src.config.utc_offset_minutes)
            facts.trips = trips_from_tables(journal.engine, start, end,
                                            src.config.utc_offset_minutes)
        else:
            facts = collect(journal.read(), src.catalog, src.config, start, end)
    finally:
        journal.close()
    return compute(facts, src.catalog, src.settings, month)


def history_rows(journal: Journal, start: float, end: float, utc_offset_minutes: int
                 ) -> dict[str, Sequence[Any]] | None:
    """The month's rows from the past days' tables, or None when they may not hold all of
    it: the month is not over in the journal (its last day closes only with a later
    record), or the tables begin after the month's first day with records."""
    from sqlalchemy import func, inspect, select

    from ..store import history as h
    from ..store.journal import journal as jt

    if not inspect(journal.engine).has_table(h.days.name):
        return None
    with journal.engine.connect() as conn:
        first_ts = conn.execute(select(jt.c.ts).order_by(jt.c.pos).limit(1)).scalar()
        last_ts = conn.execute(select(jt.c.ts).order_by(jt.c.pos.desc()).limit(1)).scalar()
        first_day = conn.execute(select(func.min(h.days.c.day))).scalar()
    if first_ts is None or last_ts is None or last_ts < end or first_day is None:
        return None
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))

    def day(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, tz).strftime("%Y%m%d")

    if first_day > max(day(start), day(first_ts)):
        return None
    # A day either side: a rating or case word given after midnight for a ticket of the
    # day before is filtered by its own time (facts_from_history).
    return h.History(journal.engine).report_rows(day(start - 86400), day(end))


def run(config: Path | None, db: str | None, month: str, out: Path,
        catalog_path: Path | None = None, weights: dict[str, float] | None = None,
        charts: bool = True, replay: bool = False) -> Report:
    from .render import write_all

    src = load_source(config, db, catalog_path, weights)
    report = build(src, month, replay)
    write_all(report, src.catalog, out, charts=charts)
    return report
