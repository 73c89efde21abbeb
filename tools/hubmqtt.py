"""How a staff tool on the hub's machine reaches the centre's broker: the hub's own broker
URL and account (centre.toml's [broker] url, or the embedded broker with the account the
fleet registry derives), TLS included. Used by `onewindow flash` and `onewindow devices`."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiomqtt

from ..hub.config import BrokerURL, HubConfig, embedded_hub_url


def hub_broker(config: HubConfig) -> BrokerURL:
    url = (BrokerURL.parse(config.broker_url) if config.broker_url
           else embedded_hub_url(config))  # the embedded broker's hub listener
    if url.username is not None:
        return url
    try:  # the hub's derived account, once the centre has a fleet secret
        from ..hub.fleet.registry import Fleet, hub_password, hub_user

        if _db_exists(config.database_url):
            with Fleet(config.database_url) as fleet:
                secret = fleet.secret()
            if secret is not None:
                centre = config.centre.centre_id
                return dataclasses.replace(url, username=hub_user(centre),
                                           password=hub_password(secret, centre))
    except Exception:  # no fleet registry here, or its database is unreadable: anonymous
        pass
    return url


def _db_exists(url: str) -> bool:
    """Never create an empty SQLite file just by asking."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        return Path(url.removeprefix("sqlite:///")).exists()
    return True


def client(config: HubConfig, url: BrokerURL, identifier: str) -> aiomqtt.Client:
    kw: dict[str, Any] = {}
    if url.tls:
        kw["tls_params"] = aiomqtt.TLSParameters(ca_certs=config.broker_ca)
    return aiomqtt.Client(url.host, url.port, username=url.username, password=url.password,
                          identifier=identifier, **kw)
