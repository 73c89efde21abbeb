"""Install the pinned MicroPython port stubs the firmware type check uses, before the tests.

`python -m onewindow.tools.testkit.stubs` (tools/dev.sh runs it with the [dev] install)
installs each port's stubs, with the stdlib stubs they share, into its own directory
`.stubs/<port>/`. The pins live in pyproject.toml, `[tool.onewindow.micropython-stubs]`.
They cannot be plain [dev] dependencies: every port's stub package ships top-level modules of
the same names (`machine`, `time`, `socket`, `__builtins__` ...), so two ports in one
site-packages would overwrite each other (and shadow CPython's names there). The test only
reads these directories; it never downloads (firmware/tests/test_compile_and_types.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
STUBS_DIR = REPO / ".stubs"


def pins() -> tuple[str, dict[str, str]]:
    """(the shared stdlib stubs, {port: its stub package}), each `name==version`."""
    with PYPROJECT.open("rb") as f:
        table = dict(tomllib.load(f)["tool"]["onewindow"]["micropython-stubs"])
    return table.pop("stdlib"), table


def _dist_info(spec: str) -> str:
    name, _, version = spec.partition("==")
    return f"{name.replace('-', '_')}-{version}.dist-info"


def directory(port: str) -> Path:
    return STUBS_DIR / port


def missing(port: str) -> list[str]:
    """The pinned packages not installed (at their pinned version) in the port's directory."""
    stdlib, ports = pins()
    return [spec for spec in (ports[port], stdlib)
            if not (directory(port) / _dist_info(spec)).is_dir()]


def install(port: str) -> Path:
    """Install the port's pinned stubs into .stubs/<port>/ (replacing an older set)."""
    stdlib, ports = pins()
    target = directory(port)
    STUBS_DIR.mkdir(exist_ok=True)
    # A directory of its own: two installers at once (two checkouts' set-ups) do not clash.
    tmp = Path(tempfile.mkdtemp(prefix=f".{port}.", dir=STUBS_DIR))
    try:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target",
               str(tmp), ports[port], stdlib]
        subprocess.run(cmd, check=True, timeout=600)
        if missing(port):
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)  # a half-done install never looks complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ports", nargs="*", help="ports to install (default: all pinned)")
    args = parser.parse_args(argv)
    _, ports = pins()
    for port in args.ports or sorted(ports):
        if port not in ports:
            parser.error(f"no pinned stubs for port {port!r} (have: {', '.join(sorted(ports))})")
        if missing(port):
            print(f"{port}: installing {ports[port]} into {directory(port)}")
            install(port)
        else:
            print(f"{port}: {ports[port]} already installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
