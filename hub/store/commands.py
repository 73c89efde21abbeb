"""`onewindow backup`, `onewindow restore` and `onewindow purge`: the data's life cycle."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)


def _config(path: Path):  # type: ignore[no-untyped-def]
    from .. import config as hub_config

    try:
        return hub_config.load(path)
    except hub_config.ConfigError as e:
        typer.echo(f"配置错误 / configuration error: {e}", err=True)
        raise typer.Exit(2) from e


def backup_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
               out: Path = typer.Option(..., "--out", "-o", help="the archive to write"),
               ) -> None:
    """Back up the hub's database and uploaded documents into one archive, while the hub
    runs (SQLite backup API / pg_dump)."""
    from .backup import BackupError, backup

    cfg = _config(config)
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

    cfg = _config(config)
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
