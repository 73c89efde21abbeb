"""The city pages: the dashboard (every centre's queue, waits, windows open, devices,
alerts; live) and the monthly report (volumes, waits, one-trip rate, satisfaction by
centre and district), for two roles: ``city`` sees every centre, ``district`` its
district's. Read-only on the city database (a read replica serves as well).

Pages are zh-CN first, zh-TW and English by ``?lang=`` (kept in a cookie); their strings are
in the hub's Babel catalogs (hub/web/i18n.py; hub/web/locale/*/LC_MESSAGES/city.po, context
"city"), English msgids listed in `MSG`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..web import i18n
from . import citydb, monthly

COOKIE = "ow_city"
LANGS = ("zh-CN", "zh-TW", "en")
# key -> msgid (English); the Chinese in hub/web/locale/{zh_CN,zh_TW}/LC_MESSAGES/city.po,
# context "city"
MSG: dict[str, str] = {
    "title": "City dashboard",
    "report": "City monthly report",
    "login": "Log in",
    "user": "User name",
    "password": "Password",
    "bad_login": "Wrong user name or password",
    "centre": "Centre",
    "district": "District",
    "waiting": "Waiting",
    "longest": "Longest wait (min)",
    "windows": "Windows open",
    "devices": "Devices online",
    "alerts": "Alerts",
    "issued": "Tickets today",
    "served": "Served",
    "avg_wait": "Mean wait (min)",
    "p90_wait": "p90 wait (min)",
    "one_trip": "One-trip rate",
    "satisfaction": "Satisfaction",
    "ratings": "Ratings",
    "stale": "Stale (s)",
    "month": "Month",
    "total": "Total",
    "no_shows": "No-shows",
    "logout": "Log out",
    "offline": "cut off",
    "staff": "Staff: five dimensions",
    "clerks": "Clerks",
    "quantity": "Quantity",
    "efficiency": "Efficiency",
    "value": "Value-weighted workload",
    "rating": "Service rating",
    "quality": "Closed-loop quality",
    "cases": "Cases and bookings",
    "cases_accepted": "Accepted",
    "cases_in_time": "Closed in time",
    "cases_overdue": "Overdue",
    "bookings_booked": "Booked",
    "bookings_checked_in": "Checked in",
    "bookings_no_show": "No-show",
}


def t(lang: str, key: str) -> str:
    """The page string `key` in `lang` (zh-CN, zh-TW or en; the hub's catalogs)."""
    return i18n.translations(i18n.normalise(lang) or i18n.DEFAULT).pgettext("city", MSG[key])


# ---- accounts ------------------------------------------------------------------------------
def set_user(conn: Any, username: str, password: str, role: str, district: str | None) -> None:
    from argon2 import PasswordHasher

    conn.execute("INSERT INTO city_users VALUES (%s,%s,%s,%s) ON CONFLICT (username) DO "
                 "UPDATE SET pw_hash = excluded.pw_hash, role = excluded.role, "
                 "district = excluded.district",
                 (username, PasswordHasher().hash(password), role, district))


def check_user(conn: Any, username: str, password: str) -> dict[str, Any] | None:
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    row = conn.execute("SELECT pw_hash, role, district FROM city_users WHERE username = %s",
                       (username,)).fetchone()
    if row is None:
        return None
    try:
        PasswordHasher().verify(row[0], password)
    except VerificationError:
        return None
    return {"u": username, "role": row[1], "district": row[2]}


# ---- queries -------------------------------------------------------------------------------
def _scope(who: dict[str, Any], alias: str = "c") -> tuple[str, tuple[Any, ...]]:
    if who["role"] == "city":
        return "TRUE", ()
    return f"{alias}.district = %s", (who["district"],)


def live_rows(conn: Any, who: dict[str, Any], today: dt.date, now: float
              ) -> list[dict[str, Any]]:
    """Every centre in scope: its floor now (city_live) and today's counts."""
    where, args = _scope(who)
    rows = conn.execute(
        f"""SELECT c.centre, c.name, c.district, l.doc, l.received_at,
                   s.issued, s.served, s.avg_wait
            FROM city_centres c
            LEFT JOIN city_live l ON l.centre = c.centre
            LEFT JOIN (SELECT centre, issued, served,
                              wait_sum_min / nullif(waits, 0) AS avg_wait
                       FROM city_day_counts WHERE day = %s) s
                   ON s.centre = c.centre
            WHERE {where} ORDER BY c.district NULLS LAST, c.centre""",
        (today, *args)).fetchall()
    out = []
    for centre, name, district, doc, received, issued, served, avg_wait in rows:
        d = doc or {}
        devs = d.get("devices") or {}
        out.append({
            "centre": centre, "name": name or centre, "district": district or "",
            "waiting": d.get("waiting"), "longest_min": d.get("longest_min"),
            "windows_open": d.get("windows_open"), "pos": d.get("pos"),
            "devices_online": devs.get("online"), "devices_total": devs.get("total"),
            "alerts": len(d.get("alerts") or []),
            "stale_s": round(now - received, 1) if received else None,
            "issued": issued or 0, "served": served or 0,
            "avg_wait": round(avg_wait, 1) if avg_wait is not None else None,
        })
    return out


def month_rows(conn: Any, who: dict[str, Any], month: dt.date) -> list[dict[str, Any]]:
    """One row per centre in scope for `month`, from the day summaries (a day counted once:
    the newest summary of each centre's day)."""
    where, args = _scope(who)
    end = citydb.next_month(month)
    rows = conn.execute(
        f"""WITH d AS (
                SELECT DISTINCT ON (centre, day) * FROM day_summaries
                WHERE day >= %s AND day < %s ORDER BY centre, day, pos DESC)
            SELECT c.centre, coalesce(c.name, c.centre), coalesce(c.district, ''),
                   sum(d.tickets), sum(d.served), sum(d.no_shows), sum(d.waits),
                   sum(d.wait_sum_min), avg(d.wait_p90_min), sum(d.one_trip),
                   sum(d.ratings), sum(d.satisfied), count(d.day)
            FROM d JOIN city_centres c ON c.centre = d.centre
            WHERE {where} GROUP BY 1, 2, 3 ORDER BY 3, 1""",
        (month, end, *args)).fetchall()
    return [_figures({"centre": r[0], "name": r[1], "district": r[2]}, r[3:]) for r in rows]


def _figures(head: dict[str, Any], r: tuple[Any, ...]) -> dict[str, Any]:
    tickets, served, no_shows, waits, wait_sum, p90, one_trip, ratings, satisfied, days = (
        x or 0 for x in (*r, *[None] * (10 - len(r))))
    return {**head, "tickets": int(tickets), "served": int(served), "no_shows": int(no_shows),
            "avg_wait": round(wait_sum / waits, 1) if waits else None,
            "p90_wait": round(float(p90), 1) if p90 else None,
            "one_trip": round(one_trip / served, 3) if served else None,
            "ratings": int(ratings),
            "satisfaction": round(satisfied / ratings, 3) if ratings else None,
            "days": int(days), "_w": (waits, wait_sum, p90 * days, days, one_trip, satisfied)}


def month_report(conn: Any, who: dict[str, Any], month: dt.date, catalog: Any,
                 today: dt.date) -> list[dict[str, Any]]:
    """`month_rows` with each centre's staff five dimensions, cases and bookings
    (hub/city/monthly.py); a centre with those but no day summary yet gets a row too."""
    rows = {r["centre"]: r for r in month_rows(conn, who, month)}
    facts = monthly.facts(conn, who, month)
    cases = monthly.case_counts(conn, who, month, catalog, today)
    books = monthly.booking_counts(conn, who, month)
    missing = (set(facts) | set(cases) | set(books)) - set(rows)
    if missing:
        for c, name, district in conn.execute(
                "SELECT centre, coalesce(name, centre), coalesce(district, '') "
                "FROM city_centres WHERE centre = ANY(%s)", (sorted(missing),)):
            rows[c] = _figures({"centre": c, "name": name, "district": district}, ())
    for c, r in rows.items():
        f = facts.get(c)
        r.update(monthly.staff_figures(f, catalog) if f is not None else
                 {"staff": dict.fromkeys(monthly.STAFF_KEYS), "staff_clerks": []})
        r.update(cases.get(c) or {"cases_accepted": 0, "cases_in_time": 0,
                                  "cases_overdue": 0})
        r.update(books.get(c) or {f"bookings_{k}": 0 for k in monthly.BOOKING_KEYS})
    return sorted(rows.values(), key=lambda r: (r["district"], r["centre"]))


EXTRA = ("cases_accepted", "cases_in_time", "cases_overdue", "bookings_booked",
         "bookings_checked_in", "bookings_no_show")


def district_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The centres' rows summed by district, and a total."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["district"], []).append(r)
    out = []
    for name, rs in [*sorted(groups.items()), ("*", rows)]:
        sums = [sum(r[k] for r in rs) for k in ("tickets", "served", "no_shows")]
        waits = sum(r["_w"][0] for r in rs)
        wait_sum = sum(r["_w"][1] for r in rs)
        p90_days = sum(r["_w"][2] for r in rs)
        days = sum(r["_w"][3] for r in rs)
        out.append(_figures({"centre": "", "name": "", "district": name},
                            (*sums, waits, wait_sum, p90_days / days if days else None,
                             sum(r["_w"][4] for r in rs), sum(r["ratings"] for r in rs),
                             sum(r["_w"][5] for r in rs), days)))
        if rs and "staff" in rs[0]:
            out[-1]["staff"] = monthly.staff_sum(rs)
            out[-1].update({k: sum(r[k] for r in rs) for k in EXTRA})
    return out


# ---- pages ---------------------------------------------------------------------------------
def make_app(db_url: str, secret: str, catalog: Any = None) -> Starlette:
    """`catalog`: the city's catalog (standard minutes and weights of the staff
    dimensions, promised days of the cases); the sample catalog when None."""
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    from ..catalog import load_catalog

    if catalog is None:
        catalog = load_catalog()

    signer = URLSafeTimedSerializer(secret, salt="ow-city")
    conn_box: dict[str, Any] = {}

    def conn() -> Any:
        c = conn_box.get("c")
        if c is None or c.closed:
            c = conn_box["c"] = citydb.connect(db_url)
        return c

    async def q(fn: Any, *a: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, conn(), *a)
        except Exception:
            conn_box.pop("c", None)
            raise

    def lang_of(request: Request) -> str:
        lang = request.query_params.get("lang") or request.cookies.get("ow_city_lang") or ""
        return lang if lang in LANGS else "zh-CN"

    def who_of(request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            return dict(signer.loads(raw, max_age=12 * 3600))
        except BadSignature:
            return None

    def page(lang: str, title: str, body: str) -> HTMLResponse:
        r = HTMLResponse(
            f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<nav><a href='/city'>{t(lang, 'title')}</a> · <a href='/city/report'>"
            f"{t(lang, 'report')}</a> · <a href='?lang=zh-CN'>简</a> <a href='?lang=zh-TW'>"
            f"繁</a> <a href='?lang=en'>EN</a> · <a href='/city/logout'>{t(lang, 'logout')}"
            f"</a></nav>{body}</body></html>")
        r.set_cookie("ow_city_lang", lang, samesite="lax")
        return r

    async def login(request: Request) -> Response:
        lang = lang_of(request)
        error = ""
        if request.method == "POST":
            form = await request.form()
            who = await q(check_user, str(form.get("username", "")),
                          str(form.get("password", "")))
            if who is not None:
                r = RedirectResponse("/city", 303)
                r.set_cookie(COOKIE, signer.dumps(who), httponly=True, samesite="lax")
                return r
            error = f"<p class='err'>{t(lang, 'bad_login')}</p>"
        return page(lang, t(lang, "login"), (
            f"<h1>{t(lang, 'login')}</h1>{error}<form method='post'>"
            f"<label>{t(lang, 'user')} <input name='username'></label> "
            f"<label>{t(lang, 'password')} <input name='password' type='password'></label> "
            f"<button>{t(lang, 'login')}</button></form>"))

    async def logout(request: Request) -> Response:
        r = RedirectResponse("/city/login", 303)
        r.delete_cookie(COOKIE)
        return r

    async def api_live(request: Request) -> Response:
        who = who_of(request)
        if who is None:
            return JSONResponse({"error": "login"}, 401)
        now = time.time()
        today = dt.date.fromisoformat(request.query_params["day"]) \
            if "day" in request.query_params else dt.datetime.now(
                dt.timezone(dt.timedelta(hours=8))).date()
        rows = await q(live_rows, who, today, now)
        return JSONResponse({"at": now, "role": who["role"], "district": who["district"],
                             "centres": rows})

    async def dashboard(request: Request) -> Response:
        who = who_of(request)
        if who is None:
            return RedirectResponse("/city/login", 303)
        lang = lang_of(request)
        cols = ["centre", "district", "waiting", "longest", "windows", "devices", "alerts",
                "issued", "served", "avg_wait", "stale"]
        head = "".join(f"<th>{t(lang, c)}</th>" for c in cols)
        return page(lang, t(lang, "title"), (
            f"<h1>{t(lang, 'title')}</h1><p id='scope'>{html.escape(who['role'])} "
            f"{html.escape(who['district'] or '')}</p><table id='live'><thead><tr>{head}"
            f"</tr></thead><tbody></tbody></table>"
            f"<script>const OFF={json.dumps(t(lang, 'offline'))};{LIVE_JS}</script>"))

    async def report(request: Request) -> Response:
        who = who_of(request)
        if who is None:
            return RedirectResponse("/city/login", 303)
        lang = lang_of(request)
        m = request.query_params.get("month")
        month = dt.date.fromisoformat(m + "-01") if m else dt.datetime.now(
            dt.timezone(dt.timedelta(hours=8))).date().replace(day=1)
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
        rows = await q(month_report, who, month, catalog, today)
        cols = ["tickets", "served", "no_shows", "avg_wait", "p90_wait", "one_trip",
                "satisfaction", "ratings"]
        names = {"tickets": "issued"}

        def table(rs: list[dict[str, Any]], first: str) -> str:
            head = f"<th>{t(lang, first)}</th>" + "".join(
                f"<th>{t(lang, names.get(c, c))}</th>" for c in cols)
            body = ""
            for r in rs:
                label = r["name"] if first == "centre" else (
                    t(lang, "total") if r["district"] == "*" else r["district"])
                cells = "".join(f"<td>{_fmt(r[c], c)}</td>" for c in cols)
                body += f"<tr><td>{html.escape(str(label))}</td>{cells}</tr>"
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        def table2(rs: list[dict[str, Any]], first: str) -> str:
            """The five dimensions, cases and bookings."""
            head = f"<th>{t(lang, first)}</th>" + "".join(
                f"<th>{t(lang, c)}</th>" for c in (*monthly.STAFF_KEYS, *EXTRA))
            body = ""
            for r in rs:
                label = r["name"] if first == "centre" else (
                    t(lang, "total") if r["district"] == "*" else r["district"])
                cells = "".join(f"<td>{_fmt(r['staff'][c], c)}</td>"
                                for c in monthly.STAFF_KEYS)
                cells += "".join(f"<td>{_fmt(r[c], c)}</td>" for c in EXTRA)
                body += (f"<tr data-centre='{html.escape(r['centre'])}'><td>"
                         f"{html.escape(str(label))}</td>{cells}</tr>")
            return f"<table class='staff'><thead><tr>{head}</tr></thead><tbody>{body}" \
                   "</tbody></table>"

        dists = district_rows(rows)
        if request.query_params.get("format") == "json":
            def clean(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [{k: v for k, v in r.items() if k not in ("_w", "_s")} for r in rs]

            return JSONResponse({"month": month.isoformat()[:7], "centres": clean(rows),
                                 "districts": clean(dists)})
        return page(lang, t(lang, "report"), (
            f"<h1>{t(lang, 'report')} {month:%Y-%m}</h1><form><label>{t(lang, 'month')} "
            f"<input name='month' type='month' value='{month:%Y-%m}'></label></form>"
            f"<h2>{t(lang, 'district')}</h2>{table(dists, 'district')}"
            f"<h2>{t(lang, 'centre')}</h2>{table(rows, 'centre')}"
            f"<h2>{t(lang, 'staff')} · {t(lang, 'cases')}</h2>"
            f"<h3>{t(lang, 'district')}</h3>{table2(dists, 'district')}"
            f"<h3>{t(lang, 'centre')}</h3>{table2(rows, 'centre')}"))

    return Starlette(routes=[
        Route("/city/login", login, methods=["GET", "POST"]),
        Route("/city/logout", logout),
        Route("/city", dashboard),
        Route("/city/api/live", api_live),
        Route("/city/report", report),
    ])


def _fmt(v: Any, col: str) -> str:
    if v is None:
        return "–"
    if col in ("one_trip", "satisfaction", "rating", "quality"):
        return f"{100 * v:.1f}%"
    return html.escape(str(v))


CSS = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
       "td:first-child{text-align:left}.stale td{color:#a00}.err{color:#a00}")

LIVE_JS = r"""
async function tick(){
  try{
    const r=await fetch('/city/api/live'+location.search,{credentials:'same-origin'});
    if(!r.ok)return;
    const d=await r.json();const tb=document.querySelector('#live tbody');
    tb.innerHTML='';
    for(const c of d.centres){
      const tr=document.createElement('tr');tr.dataset.centre=c.centre;
      if(c.stale_s===null||c.stale_s>15)tr.className='stale';
      const v=[c.name,c.district,c.waiting,c.longest_min,c.windows_open,
        c.devices_total==null?'–':c.devices_online+'/'+c.devices_total,c.alerts,
        c.issued,c.served,c.avg_wait,c.stale_s===null?OFF:c.stale_s];
      for(const x of v){const td=document.createElement('td');
        td.textContent=(x===null||x===undefined)?'–':x;tr.appendChild(td);}
      tb.appendChild(tr);
    }
  }finally{setTimeout(tick,2000);}
}
tick();
"""
