"""`onewindow backup`, `onewindow restore` and `onewindow purge`: the data's life cycle."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cliutil import centre_config


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
    app.command("purge")(purge_cmd)
    app.command("rebuild-history")(history_cmd)


def backup_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
               out: Path = typer.Option(..., "--out", "-o", help="the archive to write"),
               ) -> None:
    """Back up the hub's database and uploaded documents into one archive, while the hub
    runs (SQLite backup API / pg_dump)."""
    from .backup import BackupError, backup

    cfg = centre_config(config)
    try:
        held = backup(cfg.database_url, cfg.files_dir, out,
                      cfg.centre.utc_offset_minutes, cfg.centre.centre_id)
    except BackupError as e:
        typer.echo(f"备份失败 / backup failed: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"已备份 / backed up to {out}: {held.describe()}")


def restore_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                source: Path = typer.Option(..., "--from", help="an archive from "
                                            "`onewindow backup`"),
                force: bool = typer.Option(False, "--force", help="replace a database that "
                                           "holds data (its files directory is moved aside)"),
                ) -> None:
    """Restore a backup into the centre's database and files directory (stop the hub
    first). Refuses a target that holds data unless --force."""
    from .backup import BackupError, restore

    cfg = centre_config(config)
    try:
        done = restore(source, cfg.database_url, cfg.files_dir, force,
                       cfg.centre.utc_offset_minutes)
    except BackupError as e:
        typer.echo(f"恢复失败 / restore failed: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"已恢复 / restored from {source}: {done.contents.describe()}")
    if done.moved_aside is not None:
        typer.echo(f"原文件目录已移至 / the files directory that was there is now "
                   f"{done.moved_aside}")


def purge_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
              dry_run: bool = typer.Option(False, "--dry-run", help="say what would be "
                                           "removed, change nothing"),
              ) -> None:
    """Remove personal data past its retention ([retention] in centre.toml, see
    docs/privacy.md): resident tokens of old tickets, documents of old tickets and closed
    cases. Journaled as a purge record. Run it while the hub is stopped."""
    import asyncio
    import time

    from ..runner import build_app
    from .journal import Journal
    from .retention import plan, purge

    cfg = centre_config(config)
    if not dry_run:
        state = asyncio.run(_hub_state(cfg))
        if state == "ready":
            typer.echo("中心服务正在运行，未清理：请先停止 / the hub is running, nothing purged: "
                       "stop it first (the hub numbers the journal's records itself)", err=True)
            raise typer.Exit(1)
    now = time.time()
    j = Journal(cfg.database_url)
    try:
        app = build_app(cfg, j)
        p = plan(j, app.centre.cases.values(), cfg.files_dir, cfg.retention, now,
                 cfg.centre.utc_offset_minutes, state=app.centre)
        if dry_run:
            typer.echo(f"将清理 / would purge: {p.describe()}")
            return
        pos = purge(j, p, cfg.retention, now)
        from .retention import compact

        compact(j)
    finally:
        j.close()
    typer.echo(f"已清理 / purged (journal record {pos}): {p.describe()}")


async def _hub_state(cfg) -> str | None:  # type: ignore[no-untyped-def]
    """The hub's retained status on its broker (ready, disconnected, lost), or None when
    the broker is unreachable (the embedded broker runs only with its hub) or holds none."""
    import aiomqtt

    from ...tools.devices import View, read

    view = View()
    try:
        await read(cfg, view, wait=2.0)
    except (aiomqtt.MqttError, OSError):
        return None
    return view.hub


def history_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                ) -> None:
    """Rebuild the past days' tables (hub/store/history.py) from the whole journal: for a
    journal older than them, or after a history write was lost. Only those tables are
    written (idempotently), so it may run while the hub runs."""
    import time

    from ..app import HubApp
    from ..catalog import load_catalog
    from ..config import check
    from ..core.centre import Centre
    from ..fleet.hub import fleet_registry
    from .history import History
    from .journal import Journal

    cfg = centre_config(config)
    started = time.perf_counter()
    j = Journal(cfg.database_url)
    try:
        catalog = load_catalog(cfg.catalog_path)
        check(cfg, catalog)
        history = History(j.engine)
        app = HubApp(Centre(catalog, cfg.centre), fleet_registry(cfg, j.engine), "history",
                     cfg.status_url)
        app.history_sink = history.sink
        n = app.replay(j.read(), {})  # no device replies: nothing is rendered
        left = [f.day for f in app.closed_days]
        written = history.days_written()
    finally:
        j.close()
    if left:
        typer.echo(f"历史未写完 / history not written for {', '.join(left)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"已重建 / rebuilt: {len(written)} days from {n} journal records in "
               f"{time.perf_counter() - started:.1f} s")
