"""`onewindow cases overdue`: the daily overdue list per department (issue 17, deadlines
that someone watches), from the hub's state rebuilt from its journal (snapshot and tail),
as the /cases page's deadlines section shows it: each department's promised cases past
their promised day (working days late), with `--all` also those due within the next
working days and the results ready and not collected (hub/core/deadlines.py). Reads only;
safe beside a running hub. Case ids, items and departments only: no resident data."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from .cliutil import centre_config


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Promised cases (承诺件): deadlines per department.",
                      no_args_is_help=True)
    sub.command("overdue")(overdue_cmd)
    app.add_typer(sub, name="cases")


def overdue_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                everything: bool = typer.Option(False, "--all", help="also due soon and "
                                                "ready but not collected"),
                department: str = typer.Option("", "--department", "-d",
                                               help="one department's (its catalog id)"),
                ) -> None:
    """Print each department's overdue promised cases (超期承诺件), most overdue first."""
    from .core import deadlines
    from .runner import build_app
    from .store.journal import Journal

    cfg = centre_config(config)
    j = Journal(cfg.database_url)
    try:
        app = build_app(cfg, j)
    finally:
        j.close()
    centre = app.centre
    depts = centre.catalog.departments
    if department and department not in depts:
        typer.echo(f"没有科室 {department!r} / no department {department!r}; one of "
                   f"{', '.join(depts)}", err=True)
        raise typer.Exit(2)
    now = time.time()
    rows = [w for w in deadlines.watched(centre.cases.values(), centre.calendar, now,
                                         deadlines.Watch.of(centre.config))
            if (everything or w.flag == "overdue")
            and (not department or w.department == department)]
    today = centre.local_date(now).isoformat()
    flags = {"overdue": ("超期", "overdue"), "due_soon": ("即将到期", "due soon"),
             "uncollected": ("待领取", "not collected")}
    typer.echo(f"{today} 承诺件期限 / promised cases' deadlines")
    if not rows:
        typer.echo("无 / none")
        return
    for dept in sorted({w.department for w in rows}):
        mine = [w for w in rows if w.department == dept]
        name = depts.get(dept)
        counts = ", ".join(f"{sum(1 for w in mine if w.flag == f)} {flags[f][1]}"
                           for f in flags if any(w.flag == f for w in mine))
        typer.echo(f"\n{name.zh if name else dept} / {name.en if name else dept} ({dept}): "
                   f"{counts}")
        for w in mine:
            item = centre.catalog.items.get(w.item)
            late = (f"{w.days} 个工作日 / working days late" if w.flag == "overdue" else
                    f"{w.days} 天 / days since ready" if w.flag == "uncollected" else "")
            typer.echo(f"  {w.case}  {flags[w.flag][0]}/{flags[w.flag][1]}  due {w.due_day}"
                       f"  {w.state}  {item.name.zh if item else w.item}  {late}".rstrip())
