"""`onewindow devices`: every device of a centre, as the hub sees it.

    onewindow devices --config centre.toml [--watch] [--json]

It reads the hub's retained fleet summary (`ow/{centre}/hub/fleet`, hub/fleetwatch.py)
over MQTT with the hub's own broker account. When the hub is not running that summary is
stale, so the table is rebuilt from the devices' own retained births instead, and says so
(no uptime or error counts the hub alone knows, and a device that never published is
listed as never seen). Exit status 1 when any device is offline: usable from a monitoring
script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..hub.config import HubConfig
from ..protocol import ow_protocol as proto
from .hubmqtt import client as mqtt_client
from .hubmqtt import hub_broker

QUIET = 0.3  # s without a new retained message: the broker has sent them all


@dataclass(slots=True)
class View:
    """What the broker holds: the hub's state and summary, and every device's birth."""

    hub: str | None = None  # ready | disconnected | lost | None (never ran)
    summary: dict[str, Any] | None = None
    births: dict[str, dict[str, Any]] = field(default_factory=dict)

    def take(self, topic: str, payload: bytes) -> bool:
        """Record one message; True if it changes what is shown."""
        parsed = proto.parse_topic(topic)
        if parsed is None or not payload:
            return False
        try:
            if parsed[1] == "hub" and parsed[3] == "status":
                self.hub = proto.decode("hub", payload)["state"]
            elif parsed[1] == "hub" and parsed[3] == "fleet":
                self.summary = proto.decode("fleet", payload)
            elif parsed[1] == "dev" and parsed[3] == "status" and parsed[2]:
                self.births[parsed[2]] = proto.decode("status", payload)
            else:
                return False
        except proto.ProtocolError:
            return False
        return True


def from_hub(view: View) -> dict[str, Any] | None:
    if view.summary is None or view.hub != "ready":
        return None
    return {"source": "hub", "hub": view.hub, **view.summary}


def from_births(view: View, config: HubConfig, now: float) -> dict[str, Any]:
    """The fallback table: configured devices plus whatever published a birth."""
    specs = {d.id: d for d in _configured(config)}
    rows = []
    for dev in sorted(set(specs) | set(view.births)):
        b = view.births.get(dev, {})
        spec = specs.get(dev)
        state = b.get("state", "unknown")
        rows.append({
            "id": dev, "role": spec.role if spec else b.get("role", "?"),
            "window": spec.window if spec else b.get("window"),
            "board": b.get("board") or (spec.board if spec else ""), "state": state,
            "online": state in ("ready", "booting"), "fw": b.get("fw", ""),
            "uptime": b.get("uptime"), "rssi": b.get("rssi"), "alerts": b.get("alerts", []),
            "last_seen": None, "offline_s": None, "errors": None, "reconnects": None,
            "registered": spec is not None})
    alerts = [{"dev": r["id"], "what": "offline", "state": r["state"]}
              for r in rows if not r["online"]]
    alerts += [{"dev": r["id"], "what": a} for r in rows if r["online"] for a in r["alerts"]
               if a != "paper_near_end"]
    return {"source": "births", "hub": view.hub, "ts": now, "devices": rows,
            "alerts": alerts, "online": sum(1 for r in rows if r["online"]),
            "total": len(rows)}


def _configured(config: HubConfig) -> list[Any]:
    """centre.toml's devices and, where the fleet registry is readable, the registered."""
    specs = list(config.devices)
    with contextlib.suppress(Exception):
        from ..hub.fleet.registry import Fleet, active_specs
        from .hubmqtt import _db_exists

        if _db_exists(config.database_url):
            with Fleet(config.database_url) as fleet:
                specs = active_specs(config, fleet)
    return specs


def table_data(view: View, config: HubConfig, now: float) -> dict[str, Any]:
    return from_hub(view) or from_births(view, config, now)


async def read(config: HubConfig, view: View, wait: float = 3.0) -> None:
    """Collect the retained messages once (they arrive right after subscribing)."""
    async with _subscribed(config) as client:
        end = time.monotonic() + wait
        messages = client.messages.__aiter__()
        while time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(messages.__anext__(), QUIET)
            except TimeoutError:
                if view.hub is not None or view.births:
                    return
                continue
            view.take(msg.topic.value, bytes(msg.payload))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _subscribed(config: HubConfig):  # type: ignore[no-untyped-def]
    centre = config.centre.centre_id
    async with mqtt_client(config, hub_broker(config),
                           f"ow-devices-{int(time.time() * 1000) % 10**8}") as client:
        for topic in (proto.hub_topic(centre), proto.fleet_topic(centre),
                      proto.centre_root(centre) + "/dev/+/status"):
            await client.subscribe(topic, qos=1)
        yield client


# ---- rendering ------------------------------------------------------------------------------

def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def render(data: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = data["ts"]
    title = f"{data['online']} / {data['total']} online"
    t = Table(title=title)
    for col in ("id", "role", "board", "window", "fw", "state", "uptime", "last seen",
                "rssi", "errors", "alerts"):
        t.add_column(col)
    for r in data["devices"]:
        state = "[green]online[/]" if r["online"] else (
            f"[bold red]offline[/] ({r['state']}"
            f"{', ' + _ago(r['offline_s']) if r.get('offline_s') is not None else ''})")
        seen = "never" if not r.get("last_seen") and data["source"] == "hub" else \
            _ago(now - r["last_seen"]) + " ago" if r.get("last_seen") else ""
        t.add_row(r["id"], r["role"], r.get("board") or "", str(r.get("window") or ""),
                  r.get("fw") or "", state, _ago(r.get("uptime")), seen,
                  "" if r.get("rssi") is None else f"{r['rssi']} dBm",
                  "" if r.get("errors") is None else str(r["errors"]),
                  ", ".join(r.get("alerts") or []))
    parts: list[Any] = [t]
    if data["source"] == "births":
        parts.insert(0, Text(f"the hub is not running (hub/status: {data['hub'] or 'none'}): "
                             "showing the devices' own retained births", style="bold yellow"))
    for a in data["alerts"]:
        parts.append(Text(f"! {describe(a)}", style="red"))
    return Group(*parts)


def describe(a: dict[str, Any]) -> str:
    what = a["what"]
    if what == "offline":
        return (f"{a['dev']} offline ({a.get('state')}"
                f"{', ' + _ago(a['seconds']) if a.get('seconds') is not None else ''})")
    if what == "reconnects":
        return f"{a['dev']} reconnected {a['count']} times in {a['minutes']} min"
    return f"{a['dev']} {what.replace('_', ' ')}"


def exit_code(data: dict[str, Any]) -> int:
    return 0 if data["online"] == data["total"] else 1


# ---- the command ------------------------------------------------------------------------------

async def watch(config: HubConfig, console: Any = None,
                until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Live table until Ctrl-C (or until `until(data)`); returns the last data shown."""
    from rich.live import Live

    view = View()
    data = table_data(view, config, time.time())
    async with _subscribed(config) as client:
        with Live(render(data), refresh_per_second=4, console=console) as live:
            messages = client.messages.__aiter__()
            while True:
                try:
                    msg = await asyncio.wait_for(messages.__anext__(), 1.0)
                    view.take(msg.topic.value, bytes(msg.payload))  # type: ignore[arg-type]
                except TimeoutError:
                    pass
                except asyncio.CancelledError:
                    return data
                data = table_data(view, config, time.time())
                live.update(render(data))
                if until is not None and until(data):
                    return data


def register(app: Any) -> None:
    import typer

    @app.command()
    def devices(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                watch_: bool = typer.Option(False, "--watch", help="refresh live (Ctrl-C)"),
                as_json: bool = typer.Option(False, "--json", help="JSON instead of a table")
                ) -> None:
        """Every device: role, board, window, firmware, online, uptime, last seen, signal,
        errors, alerts. Exit status 1 if any device is offline."""
        import aiomqtt
        from rich.console import Console

        from ..hub.cliutil import centre_config

        cfg = centre_config(config)
        try:
            if watch_:
                try:
                    data = asyncio.run(watch(cfg))
                except KeyboardInterrupt:
                    raise typer.Exit(0) from None
            else:
                view = View()
                asyncio.run(read(cfg, view))
                data = table_data(view, cfg, time.time())
        except aiomqtt.MqttError as e:
            url = hub_broker(cfg)
            typer.echo(f"cannot reach the broker at {url.host}:{url.port} ({e}): is the hub "
                       "(or its broker) running?", err=True)
            raise typer.Exit(2) from e
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            Console().print(render(data))
        raise typer.Exit(exit_code(data))
