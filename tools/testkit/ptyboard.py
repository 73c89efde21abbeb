"""A "board on a serial port" for testing `onewindow flash` without hardware: the
MicroPython unix port's REPL behind a pseudo-terminal, made by socat.

mpremote drives it like a board: the unix port has the raw REPL and raw-paste mode, and its
filesystem is the process's working folder (VfsPosix), so `fs cp` writes there. Two
differences from a board, both handled by the flash tool: Ctrl-D in the raw REPL ends the
process instead of soft-resetting (so mpremote runs with `resume`), and nothing runs
main.py by itself (the flash tool types the command that runs it). Both pty ends are raw:
with the line discipline's newline translation the banner arrives as "\\r\\r\\n" and
mpremote never recognises the raw REPL prompt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .fwsim import micropython_binary
from .testbed import terminate


class PtyBoard:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.port = str(self.workdir / "tty")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> PtyBoard:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed: apt-get install socat")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "socat.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [socat, f"PTY,link={self.port},raw,echo=0",
             f"EXEC:{micropython_binary()} -i,pty,raw,echo=0,stderr,setsid,ctty"],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while not os.path.exists(self.port):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"socat made no pty at {self.port}")
            time.sleep(0.05)
        time.sleep(0.3)  # the REPL banner
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None

    def __enter__(self) -> PtyBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
