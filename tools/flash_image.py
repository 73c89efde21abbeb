"""Checks `onewindow flash` makes before it touches a board: is this MicroPython image for
this board's chip, and is the serial port there and free.

Pure file and OS checks, no board needed: a wrong image caught here costs nothing, a wrong
image written costs a bricked afternoon (an ESP32-S3 image on an ESP32 does not boot).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path


class FlashError(Exception):
    """A step failed; the message says what happened and what to do."""


@dataclass(frozen=True, slots=True)
class BoardInfo:
    chip: str  # esptool's --chip name, or "rp2040" / "rp2350"
    kind: str  # "esp32" (esptool, .bin) | "rp2" (BOOTSEL, .uf2) | "sim" (unix port)
    offset: int = 0  # where an ESP32 MicroPython .bin goes (0x1000 on the classic ESP32)


# The boards OneWindow has a board file for (boards/*.py), and the chips they carry.
BOARDS: dict[str, BoardInfo] = {
    "esp32-devkitc": BoardInfo("esp32", "esp32", 0x1000),
    "pico-w": BoardInfo("rp2040", "rp2"),
    "sim": BoardInfo("unix", "sim"),
}

# ESP32 image header: magic 0xE9 at 0, then the 16-byte extended header at 8 whose
# little-endian uint16 at byte 12 is the chip id (esptool's IMAGE_CHIP_ID values).
ESP_MAGIC = 0xE9
ESP_CHIP_IDS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2",
                13: "esp32c6", 16: "esp32h2", 18: "esp32p4", 23: "esp32c5", 20: "esp32c61"}

# UF2 blocks: 512 bytes, two start magics, an end magic; the family id (flag 0x2000) at
# byte 28 says which chip the payload is for.
UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_FAMILY = 0x2000
UF2_FAMILIES = {0xE48BFF56: "rp2040", 0xE48BFF57: "rp2350",  # absolute (the RP2350 errata)
                0xE48BFF59: "rp2350", 0xE48BFF5A: "rp2350", 0xE48BFF5B: "rp2350",
                0xE48BFF58: "rp2350"}  # RP2350 ARM-S, RISC-V, ARM-NS, data


def board_info(board: str) -> BoardInfo:
    info = BOARDS.get(board)
    if info is None:
        raise FlashError(f"unknown board {board!r}: one of {', '.join(sorted(BOARDS))}")
    return info


def esp_chip(data: bytes) -> str:
    """The chip an ESP32 app/bootloader image is built for."""
    if len(data) < 24 or data[0] != ESP_MAGIC:
        raise FlashError("not an ESP32 firmware image (no 0xE9 magic at the start): download "
                         "the .bin for your board from micropython.org/download")
    chip_id = struct.unpack_from("<H", data, 12)[0]
    chip = ESP_CHIP_IDS.get(chip_id)
    if chip is None:
        raise FlashError(f"ESP image for an unknown chip id {chip_id}")
    return chip


def uf2_families(data: bytes) -> set[str]:
    """The chips a UF2 file's blocks target (every block is checked, not just the first)."""
    if len(data) < 512 or len(data) % 512:
        raise FlashError("not a UF2 file (its size is not a whole number of 512-byte blocks)")
    found: set[str] = set()
    for off in range(0, len(data), 512):
        m0, m1, flags = struct.unpack_from("<III", data, off)
        (end,) = struct.unpack_from("<I", data, off + 508)
        if (m0, m1, end) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
            raise FlashError(f"not a UF2 file (bad magic in the block at byte {off})")
        if flags & UF2_FLAG_FAMILY:
            (fam,) = struct.unpack_from("<I", data, off + 28)
            found.add(UF2_FAMILIES.get(fam, f"family 0x{fam:08x}"))
    return found


def check_image(path: Path, board: str) -> BoardInfo:
    """Refuse an image that is not for `board`'s chip; returns the board's info."""
    info = board_info(board)
    if info.kind == "sim":
        raise FlashError("the sim board runs the unix port: there is no MicroPython image to "
                         "write; leave --micropython out")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FlashError(f"cannot read the MicroPython image {path}: {e.strerror}") from e
    if info.kind == "esp32":
        if path.suffix.lower() == ".uf2":
            raise FlashError(f"{path.name} is a UF2 file (Raspberry Pi Pico); {board} takes "
                             "the ESP32 .bin image")
        chip = esp_chip(data)
        if chip != info.chip:
            raise FlashError(f"{path.name} is built for {chip}, but {board} is an "
                             f"{info.chip}: download the {info.chip.upper()} image")
        return info
    if data[:1] == bytes([ESP_MAGIC]) and path.suffix.lower() != ".uf2":
        raise FlashError(f"{path.name} is an ESP32 image; {board} takes a .uf2 file")
    families = uf2_families(data)
    if info.chip not in families:
        what = ", ".join(sorted(families)) or "no family id"
        raise FlashError(f"{path.name} is a UF2 for {what}, but {board} is an {info.chip}: "
                         f"download the {board.upper()} .uf2 from micropython.org/download")
    return info


# ---- the serial port ------------------------------------------------------------------------

BUSY_HINT = ("close Thonny, screen, minicom, another mpremote or a running `onewindow "
             "flash` (the serial port can have one user only), then run this again")


def port_holders(port: str) -> list[str]:
    """Processes that have `port` open, as 'pid (name)': best effort, from /proc."""
    try:
        target = os.path.realpath(port)
    except OSError:
        return []
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                    out.append(f"{pid} ({name})")
                    break
            except OSError:
                continue
    return [h for h in out if not h.startswith(f"{os.getpid()} ")]


def check_port(port: str) -> None:
    """The port exists and nobody else holds it. pyserial (Thonny, mpremote, esptool) takes
    an exclusive flock; screen and minicom set TIOCEXCL, which makes our open() fail."""
    if not os.path.exists(port):
        raise FlashError(f"no device on {port}: plug the board in (a data USB cable, not a "
                         "charge-only one) and check `ls /dev/ttyUSB* /dev/ttyACM*`")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise FlashError(f"{port} is busy: {BUSY_HINT}") from e
        if e.errno == errno.EACCES:
            raise FlashError(f"no permission to open {port}: add yourself to the dialout "
                             "group (sudo usermod -aG dialout $USER) and log in again") from e
        raise FlashError(f"cannot open {port}: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holders = port_holders(port)
        who = f" (held by {', '.join(holders)})" if holders else ""
        raise FlashError(f"{port} is busy{who}: {BUSY_HINT}") from e
    finally:
        os.close(fd)  # closing drops our own lock: the next step opens it again
