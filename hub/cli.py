"""The `onewindow` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import typer

from . import config as hub_config

app = typer.Typer(help="OneWindow queue management: hub, demo and tools.",
                  no_args_is_help=True, add_completion=False)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _until_signal(main) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await main(stop)


@app.command()
def hub(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
        verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Run the hub for one centre (embedded broker unless [broker] url is set)."""
    from .runner import serve

    _logging(verbose)
    try:
        cfg = hub_config.load(config)
    except hub_config.ConfigError as e:
        typer.echo(f"配置错误 / configuration error: {e}", err=True)
        raise typer.Exit(2) from e
    asyncio.run(_until_signal(lambda stop: serve(cfg, stop)))


@app.command()
def node(config: Path = typer.Option(..., "--config", "-c", help="node.toml"),
         verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Run a Raspberry Pi window node (or kiosk): keys, card reader, scanner, camera."""
    from ..node import config as node_config
    from ..node.main import run

    _logging(verbose)
    try:
        cfg = node_config.load(config)
    except (node_config.NodeConfigError, OSError) as e:
        typer.echo(f"配置错误 / configuration error: {e}", err=True)
        raise typer.Exit(2) from e
    asyncio.run(_until_signal(lambda stop: run(cfg, stop)))


@app.command()
def demo(minutes: float = typer.Option(0, help="stop after this many real minutes (0: run "
                                                "until Ctrl-C)"),
         speed: float = typer.Option(60.0, help="simulated seconds per real second"),
         windows: int = typer.Option(8, help="windows in the simulated centre"),
         live: bool = typer.Option(True, help="live terminal view (rich)"),
         seed: int = typer.Option(1)) -> None:
    """A whole simulated centre's morning on the embedded broker: no setup needed."""
    from ..tools.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_until_signal(lambda stop: run_demo(stop, minutes=minutes, speed=speed,
                                                    windows=windows, live=live, seed=seed)))


if __name__ == "__main__":
    app()
