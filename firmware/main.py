# Board entry point: `micropython firmware/main.py ow.json` on the unix port; on a board
# the provisioning tools put this file and /ow.json on the flash.
import sys

from ow import runtime

runtime.main(sys.argv[1] if len(sys.argv) > 1 else "ow.json")
