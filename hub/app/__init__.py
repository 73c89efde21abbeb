"""The hub's application layer: MQTT messages in, journal records and MQTT messages out,
with no I/O and no clock (the runner, hub/runner.py, does both). A device's message goes
through these modules in this order:

* `facade.py`: `HubApp`, the one object the runner, the web side and the tests drive, and
  `handle`, the one boundary for per-message failures;
* `inbound.py`: topic and payload decoded and checked (protocol/ow_protocol.py), the device
  known (hub/devices.py), its status, acks and events, the seq rules;
* `device_commands.py`: an event as the core command it asks for (its journal record);
* `records.py`: a record applied to the core (hub/core), live and in a replay alike, through
  `day_close.py` (what the past days' tables get of each day) and `case_archive.py`
  (closed cases that left memory);
* `effects.py`: the core's effects as messages: replies, print commands (`tickets.py`),
  window displays and the hall board (`boards.py`), with the waits a take prints
  (`waits.py`); `outbound.py`: replies, errors and the state the hub sends of itself;
* `replay.py`: the state from the journal, as a snapshot, restored, rebuilt;
* `state.py`: what the app holds (`AppState`) and what a message gives back (`Step`).

The runner then journals the step's records and only after that publishes its messages.
"""

from .facade import HubApp
from .state import Step

__all__ = ["HubApp", "Step"]
