"""Before a hub starts anything: are the ports it will listen on free?

A newcomer's machine often has the system's Mosquitto on 1883 (Debian starts it when the
package is installed, as `tools/dev.sh test` does) and some web server on 8080. Without this
check the embedded Mosquitto died with "Address already in use" deep in its start and the
command ended in a traceback. Here each busy port is said in one line naming the setting
that moves it, before the journal, the broker or the web side is touched.

The check binds and closes at once (with SO_REUSEADDR, as the listeners themselves do, so a
port left in TIME_WAIT by the previous hub is not reported busy); a program taking the port
between this check and the real listen still gets the listeners' own errors.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import ConfigError, HubConfig, embedded_hub_url

if TYPE_CHECKING:
    from .core.catalog import Catalog


class PortBusy(ConfigError):
    """A port the configuration asks for is held by another program: one line, exit 2."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    setting: str  # what to change in centre.toml
    what: str  # zh-CN / English


def listens(config: HubConfig) -> list[Listen]:
    """Every port the hub itself will listen on under `config`."""
    out: list[Listen] = []
    if config.broker_url is None:  # the embedded broker's two listeners, loopback only
        out.append(Listen("127.0.0.1", config.embedded_port, "[broker] embedded_port",
                          "内置 MQTT 代理（设备端口） / embedded broker (devices)"))
        hub_port = embedded_hub_url(config).port
        setting = ("[broker] embedded_hub_port" if config.embedded_hub_port is not None
                   else "[broker] embedded_hub_port (default embedded_port + 1)")
        out.append(Listen("127.0.0.1", hub_port, setting,
                          "内置 MQTT 代理（hub 端口） / embedded broker (hub listener)"))
    if config.web is not None:
        out.append(Listen(config.web.host, config.web.port, "[web] port",
                          "网页 / web pages"))
    return out


def busy(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (the OS's words), or None when it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"{host}: {e.strerror}"
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            s.listen(1)
        except OSError as e:
            return e.strerror or str(e)
    return None


def check_ports(config: HubConfig) -> None:
    """Raise PortBusy for the first port that cannot be listened on, naming the setting."""
    seen: set[int] = set()
    for lst in listens(config):
        if lst.port in seen:
            raise PortBusy(f"{lst.setting} = {lst.port}: the same port is used twice; "
                           f"give {lst.what} its own")
        seen.add(lst.port)
        why = busy(lst.host, lst.port)
        if why is not None:
            hint = (" (the system's Mosquitto? `systemctl status mosquitto`)"
                    if "broker" in lst.what else "")
            raise PortBusy(
                f"端口 {lst.port} 已被占用 / port {lst.port} on {lst.host} is in use ({why})"
                f"{hint}: set {lst.setting} in the centre's TOML to a free port "
                f"— {lst.what}")


def check_centre(config: HubConfig) -> None:
    """The catalog file and the configuration against it (windows' kinds and skills, the
    devices' windows), read as the hub will read them, before anything starts: a mistake
    there is a ConfigError naming it, not a traceback after the broker has started."""
    from .config import check
    from .core.centre import Centre
    from .core.rejected import Rejected

    catalog = read_catalog(config)
    try:
        check(config, catalog)
        Centre(catalog, config.centre)  # each window's skills resolved against the catalog
    except (ValueError, KeyError, Rejected) as e:  # Rejected: a skill naming no item or line
        raise ConfigError(f"[[windows]]: {e}" if isinstance(e, Rejected) else str(e)) from e


def read_catalog(config: HubConfig) -> Catalog:
    """The configuration's catalog (default: the sample), or a ConfigError naming the file
    and what is wrong with it."""
    from .catalog import load_catalog

    where = f"[centre] catalog = {config.catalog_path!r}: " if config.catalog_path else ""
    try:
        return load_catalog(config.catalog_path)
    except OSError as e:
        raise ConfigError(f"{where}{e.strerror or e}") from e
    except (ValueError, KeyError, TypeError) as e:  # CatalogError, JSON that does not parse
        raise ConfigError(f"{where}{e}") from e
