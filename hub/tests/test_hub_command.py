"""`onewindow hub` as a technician starts it: what stops it from starting (a web port already
taken, remote takes configured before the centre has its secret) is said in one line and the
command ends with exit 2, not a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

from onewindow.hub.cliutil import CONFIG_ERROR_EXIT
from onewindow.tools.testkit.testbed import Mosquitto, write_config


def test_a_web_port_in_use_is_one_clear_line_and_exit_2(tmp_path) -> None:
    with socket.socket() as taken, Mosquitto(tmp_path / "broker") as broker:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=2, extra=f"\n[web]\nport = {port}\n")
        done = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "hub", "--config",
                               str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == CONFIG_ERROR_EXIT, done.stderr[-2000:]
    # said before anything starts (hub/preflight.py), naming the setting to change
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr and "[web] port" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout


def test_remote_takes_without_the_centre_secret_are_one_clear_line_and_exit_2(tmp_path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=2, extra="\n[remote]\nenabled = true\n")
        done = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "hub", "--config",
                               str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == CONFIG_ERROR_EXIT, done.stderr[-2000:]
    assert "onewindow broker-config" in done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
