"""`onewindow provision` and `onewindow broker-config`: registered on the main typer app by
`register(app)` (hub/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ..cliutil import centre_config
from ..config import HubConfig


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"错误 / error: {e}", err=True)
    return typer.Exit(1)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a TOML basic string


def node_toml(cfg: dict[str, Any], hub_url: str | None) -> str:
    """A window node's or kiosk's node.toml (node/config.py) from the device config."""
    node = {"id": cfg["dev"], "centre": cfg["centre"], "role": cfg["role"]}
    if "window" in cfg:
        node["window"] = cfg["window"]
    lines = ["# Written by `onewindow provision`. Keys, LEDs, scanner, camera and printer: see",
             "# docs/raspberry-pi.md.", "[node]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in node.items()]
    lines += ['state_dir = "/var/lib/onewindow-node"',
              '# the centre key that hashes residents\' cards (the same file on every node)',
              'secret_file = "/etc/onewindow/centre.key"', "", "[broker]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in cfg["broker"].items()]
    lines += ["", "[hub]"]
    if hub_url:
        lines.append(f"url = {_toml_value(hub_url)}")
    lines.append(f"token = {_toml_value(cfg['hub_token'])}")
    if cfg["role"] == "kiosk":
        lines += ["", "[kiosk]", '# item = "SOC-001"   # what a card tap takes a ticket for']
    return "\n".join(lines) + "\n"


def _hub_url(config: HubConfig, host: str) -> str | None:
    if config.web is None:
        return None
    web_host = config.web.host if config.web.host not in ("0.0.0.0", "::") else host
    return f"http://{web_host}:{config.web.port}"


def provision_cmd(
        config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
        dev_id: str = typer.Option(None, "--id", help="device id, e.g. led-3"),
        role: str = typer.Option(None, "--role", help="led | hall | box | keypad | node | kiosk"),
        window: int = typer.Option(None, "--window", help="its window (led, keypad, node)"),
        board: str = typer.Option(None, "--board", help="esp32-devkitc | pico-w | rpi | ..."),
        out: Path = typer.Option(None, "--out", help="write ow.json (node.toml for a node or "
                                 "kiosk) here instead of printing it"),
        broker_host: str = typer.Option(None, "--broker-host",
                                        help="the broker's address as the device sees it"),
        broker_port: int = typer.Option(None, "--broker-port"),
        tls: bool = typer.Option(False, "--tls", help="the device connects with TLS"),
        wifi_ssid: str = typer.Option(None, "--wifi-ssid", help="a board's Wi-Fi (ow.json)"),
        wifi_password: str = typer.Option(None, "--wifi-password"),
        force: bool = typer.Option(False, "--force",
                                   help="re-register an id with another role/window/board"),
        revoke: str = typer.Option(None, "--revoke", help="revoke this device id"),
        rotate: str = typer.Option(None, "--rotate", help="new credentials for this device"),
        list_: bool = typer.Option(False, "--list", help="list the registered devices")
) -> None:
    """Register a device and print (or --out) the config it boots with; --revoke, --rotate,
    --list. After any change: onewindow broker-config, so the broker knows."""
    from ..mqtt.private_mosquitto import registry_changed
    from . import registry as r

    cfg = centre_config(config)
    try:
        if list_:
            with r.Fleet(cfg.database_url) as fleet:
                for d in fleet.list():
                    typer.echo(f"{d.id}\t{d.role}\t{d.window or '-'}\t{d.board}\t"
                               f"gen {d.generation}\t{'revoked' if d.revoked else 'active'}")
            return
        if revoke or rotate:
            dev = r.revoke(cfg, revoke) if revoke else r.rotate(cfg, rotate)
            registry_changed(cfg)  # the hub's private Mosquitto, if it runs: at once
            typer.echo(f"{dev.id}: {'revoked' if dev.revoked else 'new credentials'} "
                       f"(generation {dev.generation}). Now run `onewindow broker-config` and "
                       f"reload the broker{'' if dev.revoked else ', then reflash the device'}.")
            return
        if not (dev_id and role and board):
            raise typer.BadParameter("--id, --role and --board are needed (or --revoke, "
                                     "--rotate, --list)")
        device = r.provision(cfg, dev_id, role, window, board, broker_host=broker_host,
                             broker_port=broker_port, tls=tls, force=force)
        registry_changed(cfg)
    except r.ProvisionError as e:
        raise _fail(e) from e
    if role in ("node", "kiosk"):
        text = node_toml(device, _hub_url(cfg, device["broker"]["host"]))
    else:
        if wifi_ssid:  # boards join Wi-Fi themselves; a Pi node uses the OS's network
            device["wifi"] = {"ssid": wifi_ssid, "password": wifi_password or ""}
        text = json.dumps(device, ensure_ascii=False, indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    from .mosquitto import write_atomic

    write_atomic(out, text, 0o600)
    typer.echo(f"{dev_id}: {role} provisioned → {out} (broker "
               f"{device['broker']['host']}:{device['broker']['port']}). Run `onewindow "
               f"broker-config` so the broker knows it.", err=True)


def broker_config_cmd(
        config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
        out: Path = typer.Option(..., "--out", help="folder for passwd, acl, mosquitto.conf"),
        port: int = typer.Option(1883, "--port", help="the devices' plain MQTT listener"),
        bind: str = typer.Option(None, "--bind", help="devices' listeners on this address only"),
        tls_port: int = typer.Option(None, "--tls-port", help="also a TLS listener (8883)"),
        cert_dir: Path = typer.Option(None, "--cert-dir", help="ca.crt, server.crt, server.key "
                                      "(default: --out)"),
        hub_port: int = typer.Option(1884, "--hub-port", help="the hub's and staff tools' "
                                     "listener (0: none)"),
        hub_bind: str = typer.Option("127.0.0.1", "--hub-bind"),
        reload: Path = typer.Option(None, "--reload", help="mosquitto's pid file: SIGHUP it"),
        reload_pid: int = typer.Option(None, "--reload-pid", help="mosquitto's pid: SIGHUP it")
) -> None:
    """Write Mosquitto's password file, ACL file and a mosquitto.conf snippet from the
    registered devices and centre.toml (atomically), and optionally reload Mosquitto."""
    from . import mosquitto as m

    cfg = centre_config(config)
    files, changed = m.write(cfg, out, m.Listeners(port, bind, tls_port, cert_dir,
                                                   hub_port or None, hub_bind))
    typer.echo(f"{files.users} accounts (the hub and {files.users - 1} devices) → {out}: "
               f"{', '.join(changed) if changed else 'unchanged'}")
    pid = reload_pid
    try:
        if reload is not None:
            pid = m.read_pid(reload)
        if pid is not None:
            m.reload(pid)
            typer.echo(f"mosquitto (pid {pid}) reloaded")
    except (OSError, ValueError) as e:
        raise _fail(ValueError(f"reload failed: {e}")) from e


def register(app: typer.Typer) -> None:
    app.command("provision")(provision_cmd)
    app.command("broker-config")(broker_config_cmd)
