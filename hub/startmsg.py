"""What `onewindow hub` says on stdout once it serves: the broker, the web address, the
configuration, the journal, and how to log in. A newcomer reads it in the terminal; an
operator finds it at the top of `journalctl -u onewindow-hub`; the install test waits for
its first line.

The first line is always `OneWindow hub <centre> ready` (READY names its start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import HubConfig, embedded_hub_url

READY = "OneWindow hub"
CONNECT_WAIT = 10.0  # s the banner waits for the broker before saying it is not connected


def _db(url: str) -> str:
    """The database URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        u = make_url(url)
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            u = u.set(database=str(Path(u.database).resolve()))  # where it is, from anywhere
        return u.render_as_string(hide_password=True)
    except Exception:  # an unparsable URL never got this far; say it as given
        return url.split("@")[-1]


def _web_base(config: HubConfig, runner: Any) -> str | None:
    web = getattr(runner, "web", None)
    if config.web is None or web is None:
        return None
    host = web.host
    if host in ("0.0.0.0", "::"):  # every interface: this machine reaches it on loopback
        host = "127.0.0.1"
    return f"http://{host}:{web.port}"


def ready_lines(config: HubConfig, config_path: Path, runner: Any,
                admins: int | None) -> list[str]:
    """The banner. `admins`: active admin accounts (None: unknown)."""
    c = config.centre.centre_id
    lines = [f"{READY} {c} ready / 已启动 (Ctrl-C stops)"]
    lines.append(f"  config   {Path(config_path).resolve()}")
    lines.append(f"  journal  {_db(config.database_url)} "
                 f"(position {getattr(runner.app, 'pos', 0)})")
    if config.broker_url is None:
        broker = getattr(runner, "embedded_broker", None)
        kind = "Mosquitto" if type(broker).__name__ == "PrivateMosquitto" else "amqtt"
        lines.append(f"  broker   embedded {kind}: devices mqtt://127.0.0.1:"
                     f"{config.embedded_port}, hub and staff tools "
                     f"mqtt://127.0.0.1:{embedded_hub_url(config).port}")
    else:
        from .config import BrokerURL

        u = BrokerURL.parse(config.broker_url)
        lines.append(f"  broker   {'mqtts' if u.tls else 'mqtt'}://{u.host}:{u.port}"
                     f" (topics ow/{c}/...)")
    connected = getattr(runner, "connected", None)
    if connected is not None and not connected.is_set():
        lines[-1] += "  -- NOT connected yet, retrying (see the log) / 尚未连接"
    base = _web_base(config, runner)
    if base is None:
        lines.append("  web      none (no [web] section in the configuration)")
        return lines
    exposed = config.web is not None and config.web.host in ("0.0.0.0", "::")
    # "/" sends each role where it belongs (the kiosks by their device id: a bare /kiosk
    # names no kiosk and is refused)
    lines.append(f"  web      {base}/  {base}/hall  {base}/login"
                 + ("  (all interfaces)" if exposed else ""))
    lines.append(f"  metrics  {base}/metrics")
    if admins == 0:
        lines.append(f"  login    no admin account yet: onewindow user add -c {config_path} "
                     "-u admin -r admin   (then log in at /login)")
    else:
        lines.append(f"  login    {base}/login with a staff account "
                     f"(onewindow user list -c {config_path})")
    return lines


def count_admins(database_url: str) -> int | None:
    """Active admin accounts in the hub's database (None if it cannot be read)."""
    try:
        from .store.accounts import Accounts

        accounts = Accounts(database_url)
        try:
            return sum(1 for a in accounts.list() if a.role == "admin" and a.active)
        finally:
            accounts.close()
    except Exception:  # the banner never stops a hub that already serves
        return None
