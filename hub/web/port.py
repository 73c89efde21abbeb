"""What the web side needs of the process that runs the hub, and nothing more.

The pages read the hub's state from the `HubApp` they are given (the runner rebuilds it in
place after a storage outage, so the object stays theirs); everything else goes through a
`HubPort`: an action is submitted and comes back decided, journaled and published (or as an
error), a message that changes no state is sent, and every committed step is announced to
the listeners (the live views). `hub/runner.py`'s `HubRunner` implements it; the web never
imports the runner, the runner starts the web (hub/web/__init__.py: `start_web`) and hands
itself over as the port.

`MemoryPort` is the same contract with no process around the hub: actions are decided in
memory and nothing is journaled or published. The pages' own tests use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..app import HubApp, Step
    from ..core import commands as c
    from ..devices import Publish
    from ..store.journal import Journal

Listener = Callable[["Step"], None]


class HubPort(Protocol):
    @property
    def journal(self) -> Journal | None:
        """The journal's database (the accounts and past days' tables live in it); None
        when nothing is journaled."""

    @property
    def token_lookup(self) -> Callable[[str], str | None] | None:
        """The upload token of a registered device (hub/fleet/hub.py), when provisioned."""

    def storage_available(self) -> bool:
        """False while the journal cannot store: an action now would be refused."""

    async def submit(self, cmd: c.Command) -> Step:
        """Decide `cmd` as a device event is decided: journaled before anything it causes
        is published, then announced to the listeners. Raises `Rejected` (the core said
        no) or `StorageUnavailable` (nothing was decided)."""

    async def send(self, publishes: list[Publish]) -> None:
        """Publish messages that change no state (a kiosk's tips printout)."""

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` after every committed step, and with an empty step when the
        state was rebuilt from the journal."""

    def inbound_waiting(self) -> bool:
        """Whether device messages wait to be handled (read or still in the socket): the
        live views' flusher lets them go first (hub/web/live.py)."""


class MemoryPort:
    """A hub with no process around it: actions decided in memory at `clock()`, nothing
    journaled, messages dropped (there is no broker)."""

    journal: Journal | None = None
    token_lookup: Callable[[str], str | None] | None = None

    def __init__(self, hub: HubApp, clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.clock = clock
        self._listeners: list[Listener] = []

    def storage_available(self) -> bool:
        return True

    async def submit(self, cmd: c.Command) -> Step:
        step = self.hub.operate(cmd, self.clock())
        for listener in self._listeners:
            listener(step)
        return step

    async def send(self, publishes: list[Publish]) -> None:
        pass  # no broker to send them to

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def inbound_waiting(self) -> bool:
        return False  # no devices
