"""A NATS connection to the city cluster that is made however long the city is away: the
first connect is retried (nats-py retries only after a first success), then the client
reconnects forever to any node of the list. Pings every 2 s, so a link that dies silently
is noticed within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger("onewindow.city")


async def connect(servers: list[str], user: str, password: str, stop: asyncio.Event,
                  **kw: Any) -> Any | None:
    """The connected client, or None once `stop` is set first."""
    import nats

    delay = 0.2
    while not stop.is_set():
        try:
            return await nats.connect(
                servers=servers, user=user, password=password, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, connect_timeout=2, allow_reconnect=True,
                ping_interval=2, max_outstanding_pings=3, **kw)
        except Exception as e:  # no node reachable yet: the centre is cut off at start
            log.info("city: no node of %s reachable (%s); retrying", servers, e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)
    return None
