"""`onewindow api-client add | list | rotate | revoke`: credentials of the other systems a
centre connects to (hub/store/api_clients.py, served by hub/web/api.py).

The secret is printed once, on stdout alone (so `... | read SECRET` or a secret manager's
import takes it), the rest on stderr; the database keeps only its SHA-256. A refused
change is said in one line (zh-CN / en) and the command ends with status 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from ..cliutil import centre_config
from .api_clients import DEFAULT_BURST, DEFAULT_PER_MINUTE, SCOPES, ApiClientError, ApiClients


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Credentials of other systems for the hub's API (/api/v1): the "
                           "city platform, a mini-program back end, a booking site.",
                      no_args_is_help=True)
    sub.command("add")(add_cmd)
    sub.command("list")(list_cmd)
    sub.command("rotate")(rotate_cmd)
    sub.command("revoke")(revoke_cmd)
    app.add_typer(sub, name="api-client")


@contextlib.contextmanager
def _clients(config: Path) -> Iterator[tuple[ApiClients, int]]:
    cfg = centre_config(config)
    clients = ApiClients(cfg.database_url)
    try:
        yield clients, cfg.centre.utc_offset_minutes
    except ApiClientError as e:
        typer.echo(f"错误 / error: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        clients.close()


def _day(at: float, offset: int) -> str:
    tz = dt.timezone(dt.timedelta(minutes=offset))
    return (dt.datetime.fromtimestamp(at, tz) - dt.timedelta(seconds=1)).strftime("%Y-%m-%d")


def add_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
            name: str = typer.Option(..., "--name", "-n", help="the system, e.g. city-platform"),
            scopes: str = typer.Option(..., "--scopes", help="comma-separated: "
                                       + ", ".join(SCOPES)),
            expires: str = typer.Option(..., "--expires", help="the last day it is valid "
                                        "(YYYY-MM-DD, centre's local time; at most 3 years)"),
            burst: int = typer.Option(DEFAULT_BURST, help="rate limit: requests at once"),
            per_minute: float = typer.Option(DEFAULT_PER_MINUTE, "--per-minute",
                                             help="rate limit: requests per minute after")
            ) -> None:
    """Make a credential; its secret is printed once (keep it: it cannot be shown again)."""
    from .api_clients import end_of_day, parse_scopes

    now = time.time()
    with _clients(config) as (clients, offset):
        wanted = parse_scopes(scopes)
        until = end_of_day(expires, offset, now)
        secret = clients.add(name, wanted, until, now, burst, per_minute)
    typer.echo(f"已创建 / added {name}: scopes {','.join(sorted(wanted))}, valid through "
               f"{expires}; the secret follows (shown once only):", err=True)
    typer.echo(secret)


def list_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml")) -> None:
    """List credentials: name, scopes, valid through, state, rate, last used (never secrets)."""
    now = time.time()
    with _clients(config) as (clients, offset):
        for k in clients.list():
            state = ("revoked" if k.revoked is not None
                     else "expired" if now >= k.expires else "active")
            used = (dt.datetime.fromtimestamp(k.used, dt.timezone(dt.timedelta(minutes=offset)))
                    .strftime("%Y-%m-%d %H:%M") if k.used else "-")
            typer.echo(f"{k.name}\t{','.join(sorted(k.scopes))}\t{_day(k.expires, offset)}\t"
                       f"{state}\t{k.burst}/{k.per_minute:g} per min\t{used}")


def rotate_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
               name: str = typer.Option(..., "--name", "-n"),
               expires: str = typer.Option("", "--expires", help="a new last valid day "
                                           "(YYYY-MM-DD); default: unchanged")) -> None:
    """A new secret for a credential (the old one stops working at once), printed once."""
    from .api_clients import end_of_day

    now = time.time()
    with _clients(config) as (clients, offset):
        until = end_of_day(expires, offset, now) if expires else None
        secret = clients.rotate(name, now, until)
    typer.echo(f"已更换 / rotated {name}; the new secret follows (shown once only):", err=True)
    typer.echo(secret)


def revoke_cmd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
               name: str = typer.Option(..., "--name", "-n")) -> None:
    """Revoke a credential at once (it stays listed as revoked)."""
    with _clients(config) as (clients, _):
        clients.revoke(name, time.time())
    typer.echo(f"已撤销 / revoked {name}")
