"""Over-the-air firmware updates: signed bundles (bundle.py), the wave rollout as a pure
state machine (rollout.py), its MQTT adapter (mqtt.py) and `onewindow ota` (cli.py).

For the provisioning tools: `public_key_for_config(path)` gives the `ota_pubkey` value a
board's ow.json needs to accept bundles signed with the centre's key.
"""

from .bundle import public_key_for_config

__all__ = ["public_key_for_config"]
