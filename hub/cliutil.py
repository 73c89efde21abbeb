"""What the `onewindow` commands share: the configuration file they are given, read, or a
clear refusal.

A configuration that cannot be read is a usage error, not a crash: every command says why
on stderr (zh-CN first) and ends with exit status 2, the status typer gives a bad option.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from . import config as hub_config

T = TypeVar("T")

CONFIG_ERROR_EXIT = 2


def load_or_exit(loader: Callable[[Path], T], path: Path,
                 errors: type[Exception] | tuple[type[Exception], ...]) -> T:
    """`loader(path)`; an error of `errors` is said on stderr and ends the command (exit 2)."""
    try:
        return loader(path)
    except errors as e:
        typer.echo(f"配置错误 / configuration error: {e}", err=True)
        raise typer.Exit(CONFIG_ERROR_EXIT) from e


def centre_config(path: Path) -> hub_config.HubConfig:
    """The centre's configuration (centre.toml), or the command ends (exit 2) saying why."""
    return load_or_exit(hub_config.load, path, hub_config.ConfigError)
