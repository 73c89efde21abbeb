"""The staff report as files: index.html (centre summary + one section per clerk, charts as
embedded PNG), clerks.csv, items.csv, centre.csv, helps.csv and pauses.csv (breaks per
clerk and reason) (UTF-8 with BOM, so Excel reads Chinese)."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

from ..core.catalog import Catalog
from ..core.ratings import LEVELS
from . import pauses
from .helps import FIELDS as HELP_FIELDS
from .staff import DIMENSIONS, LABELS, ClerkRow, Report
from .trips import trips_section

CLERK_FIELDS = (
    "rank", "clerk", "windows", "days", "services", "quantity", "efficiency",
    "standard_minutes", "actual_minutes", "short_services", "value", "mean_weight",
    "ratings", "satisfied", "rating_share", "cases", "returned", "corrected", "reopened",
    "quality", "score_quantity", "score_efficiency", "score_value", "score_rating",
    "score_quality", "composite",
)
ITEM_FIELDS = ("item", "name_zh", "name_en", "line", "kind", "minutes", "weight", "handled",
               "taken", "annual", "training")


def clerk_record(r: ClerkRow) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(r, k) for k in CLERK_FIELDS
                         if not k.startswith("score_") and hasattr(r, k)}
    d["windows"] = " ".join(str(w) for w in r.windows)
    for k in DIMENSIONS:
        d[f"score_{k}"] = round(r.scores.get(k, 0.0), 1)
    d["composite"] = round(r.composite, 1)
    for k in ("efficiency", "mean_weight", "rating_share", "quality"):
        d[k] = "" if d[k] is None else round(d[k], 4)
    for k in ("standard_minutes", "actual_minutes", "value"):
        d[k] = round(d[k], 1)
    return d


def write_csv(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "clerks.csv", out / "items.csv", out / "centre.csv"]
    with open(paths[0], "w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, CLERK_FIELDS)
        w.writeheader()
        for r in sorted(report.clerks, key=lambda r: r.rank):
            w.writerow(clerk_record(r))
    with open(paths[1], "w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, ITEM_FIELDS)
        w.writeheader()
        for i in report.items:
            w.writerow({k: (round(v, 1) if isinstance(v, float) else int(v)
                            if isinstance(v, bool) else v)
                        for k, v in ((k, getattr(i, k)) for k in ITEM_FIELDS)})
    with open(paths[2], "w", newline="", encoding="utf-8-sig") as f:
        kv = csv.writer(f)
        kv.writerow(("key", "value"))
        kv.writerow(("month", report.month))
        for k, v in report.centre.items():
            kv.writerow((k, "" if v is None else round(v, 4) if isinstance(v, float) else v))
        for k, v in report.settings.weights.items():
            kv.writerow((f"weight_{k}", v))
        for k, v in (report.facts.trips or {}).items():  # 预审 / 一次办成 (report/trips.py)
            kv.writerow((f"prereview_{k}", "" if v is None else v))
    paths.append(out / "helps.csv")  # help calls: response times per department (seconds)
    with open(paths[3], "w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, HELP_FIELDS)
        w.writeheader()
        for row in report.helps:
            w.writerow({k: ("" if v is None else round(v, 1) if isinstance(v, float) else v)
                        for k, v in ((k, getattr(row, k)) for k in HELP_FIELDS)})
    return paths


# ---- charts -------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def centre_charts(report: Report) -> dict[str, str]:
    plt = _plt()
    rows = sorted(report.clerks, key=lambda r: r.composite)
    out: dict[str, str] = {}
    if not rows:
        return out
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2))
    left = [0.0] * len(rows)
    total_w = sum(report.settings.weights.values())
    for k in DIMENSIONS:
        part = [report.settings.weights[k] * r.scores[k] / total_w for r in rows]
        ax.barh([r.clerk for r in rows], part, left=left, label=LABELS[k][1])
        left = [a + b for a, b in zip(left, part, strict=True)]
    ax.set_xlabel("Composite score (weighted parts of the five dimensions)")
    ax.set_xlim(0, 100)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    out["composite"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r.value for r in rows], [r.efficiency or 0 for r in rows],
               s=[max(10.0, r.quantity / 5) for r in rows], alpha=0.6)
    for r in rows:
        ax.annotate(r.clerk, (r.value, r.efficiency or 0), fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Value-weighted workload (sum of item weights)")
    ax.set_ylabel("Efficiency (standard / actual minutes)")
    ax.set_title("Workload vs efficiency (size: items handled)")
    out["scatter"] = _png(fig)

    items = [i for i in report.items if i.handled]
    if items:
        thr = report.settings.training_threshold
        over = sum(1 for i in items if i.training)
        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.bar(range(len(items)), [i.annual for i in items], width=1.0,
               color=["#c0392b" if i.training else "#7f8c8d" for i in items])
        ax.axhline(thr, color="black", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("Items, most frequent first")
        ax.set_ylabel("A year (annualised)")
        ax.set_title(f"{over} of {len(items)} items handled pass {thr} a year (red): "
                     "training priorities")
        out["items"] = _png(fig)
    return out


def clerk_chart(r: ClerkRow, mean: dict[str, float]) -> str:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 2.8), gridspec_kw={"width_ratios": [1, 1.4]})
    xs = range(len(DIMENSIONS))
    a.bar([x - 0.2 for x in xs], [r.scores[k] for k in DIMENSIONS], 0.4, label=r.clerk)
    a.bar([x + 0.2 for x in xs], [mean[k] for k in DIMENSIONS], 0.4, label="centre mean",
          color="#bbbbbb")
    a.set_xticks(list(xs), ["Qty", "Eff", "Value", "Rating", "Quality"], fontsize=8)
    a.set_ylim(0, 105)
    a.set_title("Scores (0-100)", fontsize=9)
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    days = list(r.daily)
    b.bar(range(len(days)), [r.daily[d] for d in days], color="#2e86c1")
    b.set_xticks(range(len(days)), [d[5:] for d in days], rotation=90, fontsize=6)
    b.set_title("Items handled per day", fontsize=9)
    return _png(fig)


# ---- HTML ---------------------------------------------------------------------------------
def _f(x: Any, nd: int = 2, pct: bool = False) -> str:
    if x is None:
        return "—"
    if pct:
        return f"{100 * x:.1f}%"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return html.escape(str(x))


def _label(k: str) -> str:
    zh, en = LABELS[k]
    return f"{zh}<br><small>{en}</small>"


CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
section.clerk{page-break-before:always;border-top:3px solid #2e86c1;margin-top:2em}
.train{background:#fdecea} small{color:#666;font-weight:normal}
.explain{font-size:13px;max-width:60em;background:#fafafa;padding:0.5em 1em;border:1px solid #eee}
"""


def render_html(report: Report, catalog: Catalog, charts: bool = True) -> str:
    s, cen = report.settings, report.centre
    rows = sorted(report.clerks, key=lambda r: r.rank)
    mean = {k: (sum(r.scores[k] for r in rows) / len(rows) if rows else 0.0)
            for k in DIMENSIONS}
    imgs = centre_charts(report) if charts else {}
    total_w = sum(s.weights.values())
    h: list[str] = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>窗口人员五维考核 Staff report {html.escape(report.month)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(catalog.name.zh)} · 窗口人员五维考核报告<br>"
        f"<small>Five-dimension staff report — {html.escape(catalog.name.en)} — "
        f"{html.escape(report.month)}</small></h1>",
        "<h2>中心汇总 <small>Centre summary</small></h2><table>",
    ]
    summary = [
        ("开放天数 Open days", cen["open_days"]),
        ("窗口人员 Clerks", cen["clerks"]),
        ("办结服务 Services completed", cen["services"]),
        ("办件量 Items handled", cen["quantity"]),
        ("申请事项 Items requested", cen["items_requested"]),
        ("价值加权工作量 Value-weighted workload", _f(cen["value"], 1)),
        ("办件效率 Efficiency (standard/actual)", _f(cen["efficiency"])),
        ("短时服务 Short services (not in efficiency)", cen["short_services"]),
        ("评价数 Ratings", cen["ratings"]),
        *((f"{LEVELS[k][0]} {LEVELS[k][2]} ({k})", cen.get(f"rated_{k}", 0))
          for k in sorted(LEVELS, reverse=True)),
        ("满意率 Satisfied share (非常满意+满意+基本满意)/评价数",
         f"{_f(cen['rating_share'], pct=True)} ({cen['satisfied']}/{cen['ratings']})"),
        ("差评整改 Follow-ups: 新开 opened / 已整改 closed / 未整改 open",
         f"{_f(cen.get('followups_opened'))} / {_f(cen.get('followups_closed'))} / "
         f"{_f(cen.get('followups_open'))}"),
        ("受理承诺件 Promised cases accepted", cen["cases"]),
        ("退件 Returned / 补正 Corrected / 重新办理 Reopened",
         f"{cen['returned']} / {cen['corrected']} / {cen['reopened']}"),
        ("闭环质量 Closed-loop quality", _f(cen["quality"], pct=True)),
        ("办结承诺件 Cases closed", cen["closed"]),
    ]
    h += [f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in summary]
    h.append("</table>")
    h.append("<h3>排名 <small>Ranking</small></h3><table><tr><th>#</th><th>人员 Clerk</th>"
             + "".join(f"<th>{_label(k)}<br><small>w={s.weights[k]:g}</small></th>"
                       for k in DIMENSIONS)
             + "<th>综合 Composite</th></tr>")
    for r in rows:
        raw = {"quantity": str(r.quantity), "efficiency": _f(r.efficiency),
               "value": _f(r.value, 1), "rating": _f(r.rating_share, pct=True),
               "quality": _f(r.quality, pct=True)}
        h.append(f"<tr><td>{r.rank}</td><td><a href='#c-{html.escape(r.clerk)}'>"
                 f"{html.escape(r.clerk)}</a></td>"
                 + "".join(f"<td>{raw[k]} <small>({r.scores[k]:.0f})</small></td>"
                           for k in DIMENSIONS)
                 + f"<td><b>{r.composite:.1f}</b></td></tr>")
    h.append("</table>")
    for key in ("composite", "scatter"):
        if key in imgs:
            h.append(f"<img alt='{key}' src='data:image/png;base64,{imgs[key]}'>")
    h.append(
        "<div class='explain'><h3>口径说明 <small>How the scores are made</small></h3><ol>"
        "<li><b>办件量 Quantity</b>: items handled — the ticket's item and its extra items, "
        "for every service the clerk completed (完成办结).</li>"
        "<li><b>办件效率 Efficiency</b>: Σ standard minutes ÷ Σ actual minutes (start → "
        f"complete); above 1 is quicker than standard. Services shorter than "
        f"{s.short_share:.0%} of standard (一次性告知, materials missing) are left out.</li>"
        "<li><b>价值加权工作量 Value-weighted workload</b>: Σ item difficulty weights "
        "(catalog weight, or [report.item_weights]): hard items count for more.</li>"
        "<li><b>服务评价 Service rating</b>: the national 好差评 scale, 5 非常满意 very "
        "satisfied, 4 满意 satisfied, 3 基本满意 fairly satisfied, 2 不满意 dissatisfied, "
        "1 非常不满意 very dissatisfied (three-key devices: good = 5, ok = 3, bad = 1). "
        "满意率 = ratings of level "
        f"{', '.join(map(str, s.satisfied))} ÷ all ratings. A 不满意 or 非常不满意 rating "
        "opens a 差评整改 follow-up, which a supervisor closes with a note.</li>"
        "<li><b>闭环质量 Closed-loop quality</b>: 1 − (the clerk's cases returned for "
        "correction 退回补正, corrected or reopened in the month, each case once) ÷ "
        "promised cases the clerk accepted in the month; a reassignment to another "
        "department 转办 is not counted against the clerk.</li></ol>"
        "<p>Scores 0–100: quantity, value and efficiency relative to the best clerk "
        f"(= 100){' per day worked' if s.per_day else ''}; rating and quality are the "
        "shares × 100 (no ratings or no cases: the centre's share). "
        "<b>综合 Composite</b> = Σ weight × score ÷ Σ weights, weights "
        + ", ".join(f"{LABELS[k][1]} {s.weights[k] / total_w:.0%}" for k in DIMENSIONS)
        + ".</p></div>")
    h += help_section(report)
    h += pause_section(report)
    h += trips_section(report.facts.trips)  # 预审 / 一次办成
    h.append("<h2>事项频次 <small>Item frequency — training priorities</small></h2>")
    if "items" in imgs:
        h.append(f"<img alt='items' src='data:image/png;base64,{imgs['items']}'>")
    h.append(f"<p>年化 annualised = handled ÷ {cen['open_days']} open days × "
             f"{s.open_days_per_year}; highlighted: over {s.training_threshold} a year.</p>"
             "<table><tr><th>事项 Item</th><th>名称 Name</th><th>条线 Line</th>"
             "<th>标准分钟 Std min</th><th>权重 Weight</th><th>办件 Handled</th>"
             "<th>申请 Requested</th><th>年化 A year</th></tr>")
    for i in report.items:
        h.append(f"<tr class='{'train' if i.training else ''}'><td>{html.escape(i.item)}</td>"
                 f"<td>{html.escape(i.name_zh)}<br><small>{html.escape(i.name_en)}</small></td>"
                 f"<td>{html.escape(i.line)}</td><td>{i.minutes:g}</td><td>{i.weight:g}</td>"
                 f"<td>{i.handled}</td><td>{i.taken}</td><td>{i.annual:.0f}</td></tr>")
    h.append("</table>")
    for r in rows:
        h.append(f"<section class='clerk' id='c-{html.escape(r.clerk)}'>"
                 f"<h2>{html.escape(r.clerk)} <small>第{r.rank}名 rank {r.rank} of "
                 f"{len(rows)} · 综合 composite {r.composite:.1f} · windows "
                 f"{', '.join(map(str, r.windows)) or '—'} · {r.days} days</small></h2>"
                 "<table><tr><th>维度 Dimension</th><th>数值 Figure</th>"
                 "<th>中心 Centre</th><th>得分 Score</th></tr>")
        lines = [
            ("quantity", f"{r.quantity} items / {r.services} services",
             f"{cen['quantity'] / max(1, len(rows)):.0f} per clerk"),
            ("efficiency", f"{_f(r.efficiency)} ({r.standard_minutes:.0f} std min / "
                           f"{r.actual_minutes:.0f} min; {r.short_services} short)",
             _f(cen["efficiency"])),
            ("value", f"{r.value:.1f} (mean weight {_f(r.mean_weight)})",
             f"{cen['value'] / max(1, len(rows)):.1f} per clerk"),
            ("rating", f"{_f(r.rating_share, pct=True)} ({r.satisfied}/{r.ratings}; "
                       + " · ".join(f"{LEVELS[k][0]} {r.levels.get(k, 0)}"
                                    for k in sorted(LEVELS, reverse=True))
                       + f"; 差评整改 follow-ups {r.followups})",
             _f(cen["rating_share"], pct=True)),
            ("quality", f"{_f(r.quality, pct=True)} ({r.cases} cases; returned "
                        f"{r.returned}, corrected {r.corrected}, reopened {r.reopened})",
             _f(cen["quality"], pct=True)),
        ]
        for k, fig, centre_fig in lines:
            h.append(f"<tr><td>{_label(k)}</td><td>{fig}</td><td>{centre_fig}</td>"
                     f"<td>{r.scores[k]:.0f}</td></tr>")
        h.append("</table>")
        if charts:
            h.append(f"<img alt='{html.escape(r.clerk)}' src='data:image/png;base64,"
                     f"{clerk_chart(r, mean)}'>")
        h.append("</section>")
    h.append("</body></html>")
    return "\n".join(h)


def help_section(report: Report) -> list[str]:
    """窗口吹哨 科室报到: each department's response to the windows' help calls."""
    def t(x: float | None) -> str:
        return "–" if x is None else f"{x / 60:.1f} min" if x >= 600 else f"{x:.0f} s"

    h = ["<h2>窗口吹哨 科室报到 <small>Help calls: response by department "
         "(p50 / p90 from the call)</small></h2>"]
    if not report.helps:
        return [*h, "<p>本月没有已应答的求助 No answered help calls this month.</p>"]
    h.append("<table><tr><th>科室 Department</th><th>求助 Calls</th>"
             "<th>超时上报 Escalated</th><th>应答 To answer</th><th>到场 To arrive</th>"
             "<th>解决 To resolve</th></tr>")
    for r in report.helps:
        h.append(f"<tr><td>{html.escape(r.name_zh)}<br><small>{html.escape(r.name_en)}"
                 f"</small></td><td>{r.calls}</td><td>{r.escalated}</td>"
                 f"<td>{t(r.answer_p50)} / {t(r.answer_p90)}</td>"
                 f"<td>{t(r.arrive_p50)} / {t(r.arrive_p90)}</td>"
                 f"<td>{t(r.resolve_p50)} / {t(r.resolve_p90)}</td></tr>")
    h.append("</table>")
    return h


PAUSE_FIELDS = ("clerk", "reason", "pauses", "minutes")


def pause_section(report: Report) -> list[str]:
    """Breaks per clerk and reason: pauses and paused minutes (hub/report/pauses.py)."""
    h = ["<h2 id='pauses'>窗口暂停 <small>Pauses by reason: count / minutes</small></h2>"]
    if not report.pauses:
        return [*h, "<p>本月没有暂停 No pauses this month.</p>"]
    reasons = pauses.reasons_seen(report.facts.pauses)
    h.append("<table><tr><th>人员 Clerk</th>" + "".join(
        f"<th>{html.escape(pauses.label(r)[0])}<br><small>{html.escape(pauses.label(r)[2])}"
        f"</small></th>" for r in reasons) + "<th>合计 Total</th></tr>")
    for clerk, per in report.pauses.items():
        cells = "".join(f"<td>{per[r][0]} / {per[r][1]:.0f}</td>" if r in per
                        else "<td>–</td>" for r in reasons)
        n = sum(v[0] for v in per.values())
        m = sum(v[1] for v in per.values())
        h.append(f"<tr data-clerk='{html.escape(clerk)}'><td>{html.escape(clerk)}</td>"
                 f"{cells}<td>{n} / {m:.0f}</td></tr>")
    h.append("</table>")
    return h


def write_pauses_csv(report: Report, path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, PAUSE_FIELDS)
        w.writeheader()
        for clerk, per in report.pauses.items():
            for reason, (n, minutes) in per.items():
                w.writerow({"clerk": clerk, "reason": reason, "pauses": n,
                            "minutes": round(minutes, 1)})
    return path


def write_all(report: Report, catalog: Catalog, out: Path, charts: bool = True) -> list[Path]:
    paths = write_csv(report, out)
    paths.append(write_pauses_csv(report, out / "pauses.csv"))  # breaks by reason
    page = out / "index.html"
    page.write_text(render_html(report, catalog, charts), encoding="utf-8")
    return [page, *paths]
