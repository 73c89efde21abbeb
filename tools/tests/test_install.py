"""docs/install.md, checked (issue 18): the wheel built from this tree, installed into a
fresh venv without network, configured as the guide says (Mosquitto from `onewindow
broker-config`, PostgreSQL for the journal), and the systemd unit's own ExecStart line
started until the hub says it is ready; then its /metrics answers and SIGTERM (systemd's
stop) ends it cleanly.

Offline install: the wheel is built with `pip wheel --no-deps --no-build-isolation
--no-index` (the project venv's setuptools, pinned in [dev]) and installed with `--no-deps
--no-index` into a venv of its own. Its dependencies are not downloaded: a `.pth` file in
the fresh venv's site-packages adds the project venv's site-packages after its own (the
`--system-site-packages` idea, pointed at the project venv). The `onewindow` package
itself comes from the wheel, which the test checks (the project venv's editable install is
not active there: a .pth in a directory added by a .pth is not run).

Mosquitto and PostgreSQL are private ones on free ports (tools/testkit), standing for the
system's services the guide installs.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import Postgres, wait_listening

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "install.md"
UNIT = REPO / "docs" / "deploy" / "onewindow-hub.service"
MAPPED = {"hub": "onewindow/hub", "protocol": "onewindow/protocol",
          "tools": "onewindow/tools", "node": "onewindow/node"}


def source_tree(dest: Path) -> Path:
    """The working tree as git sees it (tracked and new files, not ignored ones)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def build_wheel(tmp: Path) -> Path:
    src = source_tree(tmp / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp / "dist"), str(src)], check=True,
                   capture_output=True, timeout=120)
    [wheel] = (tmp / "dist").glob("onewindow-*.whl")
    return wheel


def unit_exec(unit: Path) -> tuple[list[str], str, dict[str, str]]:
    """The unit's ExecStart (as argv), WorkingDirectory and Environment."""
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(unit.read_text(encoding="utf-8"))
    service = cp["Service"]
    env = dict(e.split("=", 1) for e in shlex.split(service.get("Environment", "")))
    return shlex.split(service["ExecStart"]), service["WorkingDirectory"], env


def test_the_guide_covers_what_an_operator_needs():
    text = GUIDE.read_text(encoding="utf-8")
    for needed in ("adduser --system", "python3 -m venv /opt/onewindow/venv",
                   "onewindow-hub.service", "systemctl enable --now onewindow-hub",
                   "onewindow broker-config", "createuser", "createdb", "TLS",
                   "onewindow backup", "onewindow restore", "onewindow-backup.timer",
                   "journald", "pip install --upgrade", "/metrics", "[metrics]",
                   "--no-index --find-links"):
        assert needed in text, needed
    for shipped in ("onewindow-hub.service", "onewindow-backup.service",
                    "onewindow-backup.timer", "journald-onewindow.conf"):
        assert (REPO / "docs" / "deploy" / shipped).is_file(), shipped
        assert f"deploy/{shipped}" in text or shipped in text, shipped


@pytest.mark.timeout(180)
def test_the_wheel_installs_offline_and_the_units_command_serves(tmp_path):
    t0 = time.monotonic()
    wheel = build_wheel(tmp_path)
    # every package of the source is in the wheel (hub/app was once left out)
    names = set(zipfile.ZipFile(wheel).namelist())
    for top, mapped in MAPPED.items():
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            if "tests" in rel.parts:
                continue
            assert f"{mapped}/{rel.as_posix()}/__init__.py".replace("/./", "/") in names, rel

    venv = tmp_path / "opt" / "onewindow" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=120)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(py), "-c", "import onewindow.hub.app as m; print(m.__file__)"],
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where  # the wheel's copy, not the source tree's

    with Postgres() as pg:
        etc, var = tmp_path / "etc" / "onewindow", tmp_path / "var" / "lib" / "onewindow"
        etc.mkdir(parents=True)
        var.mkdir(parents=True)
        devices, hub_port, web = quiet_port(), quiet_port(), quiet_port()
        config = etc / "centre.toml"
        config.write_text(f"""
[centre]
id = "inst"
[store]
url = "{pg.url}"
files_dir = "{var / 'files'}"
[broker]
url = "mqtt://127.0.0.1:{hub_port}"
device_url = "mqtt://127.0.0.1:{devices}"
[web]
host = "127.0.0.1"
port = {web}
[log]
format = "json"
[[windows]]
number = 1
[[devices]]
id = "kp-1"
role = "keypad"
window = 1
""", encoding="utf-8")
        onewindow = venv / "bin" / "onewindow"
        mq = tmp_path / "etc" / "mosquitto" / "onewindow"
        done = subprocess.run([str(onewindow), "broker-config", "--config", str(config),
                               "--out", str(mq), "--port", str(devices),
                               "--hub-port", str(hub_port)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        conf = mq / "test.conf"  # under root Mosquitto would switch to its own user
        conf.write_text(("user root\n" if os.geteuid() == 0 else "")
                        + (mq / "mosquitto.conf").read_text())
        broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                   str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_listening(hub_port, broker, "mosquitto", 10)
            argv, workdir, env = unit_exec(UNIT)
            argv = [a.replace("/opt/onewindow/venv", str(venv))
                     .replace("/etc/onewindow", str(etc)) for a in argv]
            assert argv[0] == str(onewindow) and argv[1] == "hub", argv
            hub = subprocess.Popen(argv, cwd=workdir.replace("/var/lib/onewindow", str(var)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **env})
            try:
                assert hub.stdout is not None and hub.stderr is not None
                first = hub.stdout.readline()
                assert first.startswith("OneWindow hub inst ready"), hub.stderr.read()
                banner = "".join(hub.stdout.readline() for _ in range(6))
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=10) as r:
                    metrics = r.read().decode()
            finally:
                hub.send_signal(signal.SIGTERM)  # systemctl stop
                code = hub.wait(30)
                log = hub.stderr.read() if hub.stderr else ""
        finally:
            broker.terminate()
            broker.wait(10)
    assert code == 0, log
    assert "postgresql+psycopg://postgres@127.0.0.1" in banner
    assert f"mqtt://127.0.0.1:{hub_port}" in banner
    assert "onewindow_journal_position" in metrics and "onewindow_broker_connected 1.0" in metrics
    import json

    events = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert events and all({"ts", "level", "logger", "msg"} <= set(e) for e in events)
    assert time.monotonic() - t0 < 90  # the guide's check stays quick (~30-60 s)
