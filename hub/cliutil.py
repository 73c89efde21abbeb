"""What the `onewindow` commands share: the configuration file they are given, read, or a
clear refusal.

A configuration that cannot be read is a usage error, not a crash: every command says why
on stderr (zh-CN first) and ends with exit status 2, the status typer gives a bad option.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

# typer 0.29 carries its own copy of click: its exceptions, not the click package's, are
# what the commands raise (the version is pinned in pyproject.toml).
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from . import config as hub_config

T = TypeVar("T")

CONFIG_ERROR_EXIT = 2
USAGE_ERROR_EXIT = 2  # a value given on the command line that cannot be used


def load_or_exit(loader: Callable[[Path], T], path: Path,
                 errors: type[Exception] | tuple[type[Exception], ...]) -> T:
    """`loader(path)`; an error of `errors` is said on stderr and ends the command (exit 2)."""
    try:
        return loader(path)
    except errors as e:
        typer.echo(f"配置错误 / configuration error: {e}", err=True)
        raise typer.Exit(CONFIG_ERROR_EXIT) from e


def centre_config(path: Path) -> hub_config.HubConfig:
    """The centre's configuration (centre.toml), or the command ends (exit 2) saying why;
    a catalog it names that cannot be read is said the same way, before any command uses
    it (each reads it where it needs it)."""
    from .preflight import read_catalog

    cfg = load_or_exit(hub_config.load, path, hub_config.ConfigError)
    if cfg.catalog_path is not None:
        load_or_exit(lambda _: read_catalog(cfg), path, hub_config.ConfigError)
    return cfg


def fail(message: str, code: int = USAGE_ERROR_EXIT) -> NoReturn:
    """A mistake in what the user gave: one line on stderr (zh-CN / English), exit `code`."""
    typer.echo(f"错误 / error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class OneLineErrors(TyperGroup):
    """The `onewindow` command group: a usage mistake (an unknown option, a value that does
    not parse, a missing required option) is one line on stderr naming the command and the
    option, and exit status 2, instead of click's usage block or rich's boxed panel; help
    is plain text, so bracketed words such as `[broker] url` are shown as written (rich
    markup took them for style tags)."""

    def main(self, args: Sequence[str] | None = None,  # type: ignore[override]
             prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as e:  # `onewindow user`: its help
            e.show()
            rv = e.exit_code
        except click_errors.ClickException as e:
            ctx = getattr(e, "ctx", None)  # usage errors know their command
            where = ctx.command_path if ctx is not None else "onewindow"
            hint = f" (see {where} --help)" if isinstance(e, click_errors.UsageError) else ""
            typer.echo(f"错误 / error: {where}: {one_line(e.format_message())}{hint}",
                       err=True)
            rv = e.exit_code
        except typer.Abort:
            typer.echo("已取消 / aborted", err=True)
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def plain_help(app: typer.Typer) -> None:
    """Plain (click) help for `app` and every group added to it: see OneLineErrors."""
    app.rich_markup_mode = None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            plain_help(group.typer_instance)


async def until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)`; SIGINT or SIGTERM sets `stop` (a long-running command's clean
    end: the hub, the simulator, the city's processes)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await main(stop)
