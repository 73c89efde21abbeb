"""The device registry kept current off the event path: the fleet registry's SQL (hub/fleet/
registry.py) is read in a thread, never in the loop, and the result applied at once
(hub/devices.py `Registry`). Every LOOKUP_EVERY s all registrations are read again (a device
revoked or re-registered is seen within that time, connected or not); before a batch is
handled, the ids in it the hub does not know yet are looked up, so that a device's first
message after provisioning is served at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiomqtt

from ..protocol import ow_protocol as proto
from .app import HubApp
from .devices import LOOKUP_EVERY

log = logging.getLogger("onewindow.hub")


async def refresh_registry(app: HubApp, clock: Callable[[], float]) -> None:
    """Every LOOKUP_EVERY s, all registered devices read in one query in a thread and
    applied here at once: a device revoked or re-registered (new role or window) is
    seen within that time, connected or not, and no device event waits for SQL."""
    while True:
        await asyncio.sleep(LOOKUP_EVERY)
        registry = app.registry
        listing = registry.listing
        if listing is None:  # devices from centre.toml only: nothing to reread
            continue
        read = registry.reading()
        try:
            specs = await asyncio.to_thread(listing)
        except Exception as e:  # the registry's database is away: keep what we know
            log.warning("device registry refresh failed: %s", e)
            continue
        # The registry read may be a rebuilt app's by now (the runner's storage recovery
        # rebuilds the app in place): a newer one.
        app.registry.refresh(specs, clock(), read)


async def learn_unknown(app: HubApp, clock: Callable[[], float],
                        batch: list[aiomqtt.Message]) -> None:
    """Before a batch is handled: the registrations of the ids in it the hub does not
    know (provisioned since it read them last; an unknown id is asked again at most
    every LOOKUP_EVERY s), read in a thread, so that a device's first message after
    provisioning is served at once and no SQL runs in the loop."""
    registry, now = app.registry, clock()
    lookup = registry.lookup
    ids = set()
    for message in batch:
        parsed = proto.parse_topic(str(message.topic.value))
        if parsed is not None and parsed[1] == "dev" and parsed[2] and registry.wanted(
                parsed[2], now):
            ids.add(parsed[2])
    if not ids or lookup is None:
        return
    read = registry.reading()
    try:
        found = await asyncio.to_thread(lambda: {dev: lookup(dev) for dev in ids})
    except Exception as e:  # the registry's database is away: keep what we know
        log.warning("device registry lookup of %s failed: %s", ", ".join(sorted(ids)), e)
        return
    for dev, spec in found.items():
        registry.learn(dev, spec, now, read)
