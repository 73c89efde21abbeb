"""`onewindow report`: read the journal, compute the staff report, write HTML and CSV.

Where the window configuration comes from matters: the replay must pick the same tickets
the hub picked. A journal the simulator wrote states its layout (`meta` row `sim`), and
that one is used; otherwise the centre's own `--config` is.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..core.catalog import Catalog
from ..core.centre import CentreConfig
from ..store.journal import Journal, meta
from .staff import Report, ReportSettings, collect, compute, month_span


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


def build(src: Source, month: str) -> Report:
    try:
        start, end = month_span(month, src.config.utc_offset_minutes)
    except ValueError as e:
        raise ReportError(f"--month must look like 2026-10, not {month!r}") from e
    journal = Journal(src.url)
    try:
        facts = collect(journal.read(), src.catalog, src.config, start, end)
    finally:
        journal.close()
    return compute(facts, src.catalog, src.settings, month)


def run(config: Path | None, db: str | None, month: str, out: Path,
        catalog_path: Path | None = None, weights: dict[str, float] | None = None,
        charts: bool = True) -> Report:
    from .render import write_all

    src = load_source(config, db, catalog_path, weights)
    report = build(src, month)
    write_all(report, src.catalog, out, charts=charts)
    return report
