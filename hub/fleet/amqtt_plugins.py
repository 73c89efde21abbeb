"""The embedded broker (amqtt) enforcing the same accounts and rules as Mosquitto.

`Authority` answers from the fleet (centre.toml's [[devices]] and the registry table) and
the rules in `acl.py`; the two amqtt plugins ask it. amqtt builds plugins from dotted
names and a config dict, so the live `Authority` is handed over through a small module
table, keyed by the name in the plugin's config.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import time
from dataclasses import dataclass, field

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from ..config import HubConfig
from .acl import Grant, device_grant, hub_grant
from .registry import Fleet, device_password, hub_password, hub_user, lookup

log = logging.getLogger("onewindow.broker")
RECHECK_S = 2.0  # a connected device's account is read again at most this often

_AUTHORITIES: dict[str, Authority] = {}
_names = itertools.count(1)


class Authority:
    """Passwords and grants, read from the fleet at each connect."""

    def __init__(self, config: HubConfig, fleet: Fleet) -> None:
        self.config, self.fleet = config, fleet
        self.centre = config.centre.centre_id
        # client id -> grant, set by a successful login only: amqtt lets a refused CONNECT
        # overwrite the username of the live session with its client id.
        self.grants: dict[str, Grant] = {}
        # client id -> (generation at login, when last checked): a device revoked or
        # rotated while connected loses its grant within RECHECK_S (Mosquitto drops it on
        # the reload after broker-config; amqtt has no such reload).
        self.checked: dict[str, tuple[int, float]] = {}
        self.name = f"fleet-{next(_names)}"
        _AUTHORITIES[self.name] = self

    def close(self) -> None:
        _AUTHORITIES.pop(self.name, None)

    def login(self, user: str | None, password: str | None, client_id: str | None
              ) -> Grant | None:
        """The account's grant if the password is right and, for a device, the client id is
        the username (as Mosquitto's use_username_as_clientid makes it), else None. The
        hub's account runs several clients (hub, OTA rollout, staff tools), each with its
        own client id, like on Mosquitto's hub listener."""
        hub = user == hub_user(self.centre)
        if not user or password is None or (client_id != user and not hub):
            return None
        secret = self.fleet.secret()
        if secret is None:
            return None
        if hub:
            expected, grant = hub_password(secret, self.centre), hub_grant(self.centre, user)
        else:
            spec = lookup(self.config, self.fleet, user)
            if spec is None:
                return None
            row = self.fleet.get(user)
            generation = row.generation if row else 0
            expected = device_password(secret, user, generation)
            grant = device_grant(self.centre, spec)
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        if not hub:
            self.checked[user] = (generation, time.monotonic())
        return grant

    def current(self, client_id: str) -> Grant | None:
        """The client's grant, dropped once its device is revoked, rotated or changed."""
        grant = self.grants.get(client_id)
        seen = self.checked.get(client_id)
        if grant is None or seen is None or time.monotonic() - seen[1] < RECHECK_S:
            return grant
        try:
            spec = lookup(self.config, self.fleet, client_id)
            row = self.fleet.get(client_id)
        except Exception as e:  # the database is away: keep what was granted
            log.warning("fleet lookup of %s failed: %s", client_id, e)
            return grant
        if spec is None or (row.generation if row else 0) != seen[0] or \
                device_grant(self.centre, spec) != grant:
            log.warning("%s: revoked or changed while connected: no more access", client_id)
            self.grants.pop(client_id, None)
            self.checked.pop(client_id, None)
            return None
        self.checked[client_id] = (seen[0], time.monotonic())
        return grant


def _authority(name: str) -> Authority:
    return _AUTHORITIES[name]


def _password(session: Session) -> str | None:
    pw = session.password
    if isinstance(pw, bytes | bytearray):
        return bytes(pw).decode("utf-8", "replace")
    return pw


class OpenAuthPlugin(BaseAuthPlugin):
    """Anyone may connect (a centre with no fleet secret yet). Unlike amqtt's
    AnonymousAuthPlugin it does not mark the session anonymous, for which amqtt would
    drop the QoS 1 messages a clean_session=False client is owed while away."""

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


class FleetAuthPlugin(BaseAuthPlugin):
    """CONNECT: a known, unrevoked account with its derived password, client id equal to the
    username, and a last will only on a topic the account may publish."""

    @dataclass
    class Config:
        authority: str = field(default="")

    async def authenticate(self, *, session: Session) -> bool | None:
        auth = _authority(self.config.authority)
        grant = auth.login(session.username, _password(session), session.client_id)
        if grant is None:
            log.warning("refused MQTT login %r (client id %r)", session.username,
                        session.client_id)
            return _refuse(session)
        if session.will_flag and session.will_topic and not grant.may_publish(
                session.will_topic):
            log.warning("refused %s: last will on %s", session.username, session.will_topic)
            return _refuse(session)
        auth.grants[session.client_id or ""] = grant
        return True


def _refuse(session: Session) -> bool:
    """amqtt 0.12 copies a CONNECT's will into the live session of the same client id before
    asking any plugin, then ends that session for the newcomer, publishing the will: a
    refused login would plant a message on any topic. Drop the will (the live device loses
    its own will once, and reconnects)."""
    session.will_flag = False
    session.will_topic = None
    session.will_message = None
    return False


class FleetTopicPlugin(BaseTopicPlugin):
    """PUBLISH, SUBSCRIBE and delivery (RECEIVE), by the account's grant."""

    @dataclass
    class Config:
        authority: str = field(default="")

    async def topic_filtering(self, *, session: Session | None = None,
                              topic: str | None = None, action: Action | None = None
                              ) -> bool | None:
        if session is None or topic is None:
            return False
        grant = _authority(self.config.authority).current(session.client_id or "")
        if grant is None:
            return False
        if action == Action.PUBLISH:
            ok = grant.may_publish(topic)
        elif action == Action.SUBSCRIBE:
            ok = grant.may_subscribe(topic)
        else:
            ok = grant.may_receive(topic)
        if not ok and action != Action.RECEIVE:
            log.warning("%s may not %s %s", grant.user, action, topic)
        return ok
