"""The hub's side of the fleet: its devices, its own broker account, the embedded broker's
rules and the derived upload tokens."""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ...protocol import ow_protocol as proto
from ..config import BrokerURL, HubConfig
from ..devices import DeviceSpec, Registry
from .registry import Fleet, active_specs, hub_password, hub_user, lookup, upload_tokens

if TYPE_CHECKING:
    from .amqtt_plugins import Authority

log = logging.getLogger("onewindow.hub")
TOKEN_EVERY = 2.0  # s


def _usable(config: HubConfig, spec: DeviceSpec) -> bool:
    """A registry row that no longer fits centre.toml (its window was removed) is left out
    with a warning rather than stopping the hub."""
    numbers = {w.number for w in config.centre.windows}
    if spec.role not in proto.ROLES or (spec.window is not None and spec.window not in numbers):
        log.warning("registered device %s (%s, window %s) does not fit this centre's "
                    "configuration: ignored", spec.id, spec.role, spec.window)
        return False
    return True


def fleet_registry(config: HubConfig, engine: Engine) -> Registry:
    """[[devices]] plus the registry table (minus the revoked), and a lookup for ids
    provisioned later."""
    fleet = Fleet(engine)
    listed = active_specs(config, fleet)
    specs = [s for s in listed if _usable(config, s)]
    unfit = set(listed) - set(specs)  # warned about once, here or in `listing`

    def find(dev_id: str) -> DeviceSpec | None:
        spec = lookup(config, fleet, dev_id)
        return spec if spec is not None and _usable(config, spec) else None

    def listing() -> list[DeviceSpec]:  # the hub's background refresh: one query
        out = []
        for s in active_specs(config, fleet):
            if s in unfit:
                continue
            if _usable(config, s):
                out.append(s)
            else:
                unfit.add(s)
        return out

    return Registry(specs, find, listing)


class BrokerAccess:
    """What the hub needs to reach its broker when the centre uses fleet credentials."""

    def __init__(self, config: HubConfig, engine: Engine) -> None:
        self.config = config
        self.fleet = Fleet(engine)
        want = config.embedded_auth
        self.secret = self.fleet.secret(create=want is True)
        self.enforced = want is not False and self.secret is not None
        self._authority: Authority | None = None
        self._tokens: tuple[float, dict[str, str]] | None = None

    def authority(self) -> str | None:
        """The embedded broker's Authority name, or None for an anonymous broker."""
        if not self.enforced:
            return None
        from .amqtt_plugins import Authority

        authority = self._authority = Authority(self.config, self.fleet)
        return authority.name

    def credentials(self, url: BrokerURL) -> BrokerURL:
        """The URL's own user:pass if it has them, else the hub's derived account."""
        if url.username is not None or self.secret is None:
            return url
        centre = self.config.centre.centre_id
        return dataclasses.replace(url, username=hub_user(centre),
                                   password=hub_password(self.secret, centre))

    def token_lookup(self, token: str) -> str | None:
        """The node or kiosk whose derived upload token this is, read from the registry
        (at most once per TOKEN_EVERY s: a wrong token must not cost a query each)."""
        now = time.monotonic()
        if self._tokens is None or now - self._tokens[0] > TOKEN_EVERY:
            self._tokens = (now, upload_tokens(self.config, self.fleet))
        found = None
        for known, dev in self._tokens[1].items():  # compare all: no early exit to time
            if hmac.compare_digest(known.encode(), token.encode()):
                found = dev
        return found

    def close(self) -> None:
        if self._authority is not None:
            self._authority.close()
