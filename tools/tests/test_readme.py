"""The README's commands run as written (issue 18).

Every ```sh block of README.md is taken apart into its commands (continuation lines joined,
comments dropped) and run in README order by bash in a fresh folder set up like the
repository (docs/, hub/, tools/ linked in): the five-minute path in that folder, everything
after it in `mycentre/`, where the README says the five minutes leave the reader. Each
command is one of:

* run as written;
* run in a shorter form, said next to it in SHORTER (a demo of a whole day, a comparison of
  every layout and window count), or with a port that is free on this machine in place of
  the README's (PORTS: the test machine's own Mosquitto and anything else may hold them);
* `onewindow hub`, which runs until stopped: started in the background, awaited until it
  prints its ready banner, its login page fetched, and stopped at the end of its block;
* not run here, for the reason given in NOT_HERE (a board on a serial port, the whole test
  suite, writing to /etc): an `onewindow` command among them is still parsed by the real
  command line (`--help` appended: an option the command does not have fails).

A README command that matches none of these fails the test, so a new example must be
placed in one of them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onewindow.hub.cli import app
from onewindow.tools.testkit.ports import quiet_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

# command prefix -> why it is not run by this test
NOT_HERE = {
    "tools/dev.sh test": "the whole suite and its set-up: CI runs exactly this",
    "tools/dev.sh demo": "a whole day's demo; the same command is `onewindow demo`, run below "
                         "in short, and piped in tools/tests/test_demo_access.py",
    "python3 -m venv .venv": "makes the venv this test already runs in (and needs the network)",
    ". .venv/bin/activate": "this test's PATH already starts with the venv's bin/",
    "onewindow node": "a Raspberry Pi's node.toml and hardware (node/tests run the node)",
    "onewindow flash": "a board on a serial port (tools/tests/test_flash.py: a simulated one)",
    "onewindow ota": "boards online on the broker (hil-tests/test_hil_ota.py)",
    "onewindow devices": "reads a running hub's broker (tools/tests/test_devices.py)",
    "python -m onewindow.tools.firmware": "a board, or mpy-cross images "
                                          "(firmware/tests build them)",
}
# command prefix -> (the README's text, what this test runs instead, why)
SHORTER = {
    "onewindow sim --compare": (
        "--compare --weather rain", "--compare --weather rain --min-windows 10 "
        "--max-windows 11 --seeds 1", "every layout x 6..16 windows x 3 seeds is ~100 days"),
    "onewindow demo": (
        "--speed 120", "--speed 600 --minutes 0.2 --no-live", "a whole day at x120 is 4 min"),
}
PASSWORD = "readme-Pass-2026"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    out: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        # a comment starts at a # outside quotes (the sed expressions hold none)
        words = shlex.split(line, comments=True)
        if words:
            out.append(line.split("  #")[0].strip() if "  #" in line else line.strip())
    return out


def onewindow_parses(command: str) -> None:
    args = shlex.split(command)[1:]
    res = CliRunner().invoke(app, [*args, "--help"])
    assert res.exit_code == 0, (command, res.stdout, res.stderr)


@pytest.mark.timeout(600)
def test_the_readme_examples_run_as_written(tmp_path):
    web, broker = quiet_port(), quiet_port(pair=True)
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("docs", "hub", "tools"):
        (root / name).symlink_to(REPO / name)
    script = [
        "set -eu",  # no pipefail: `curl ... | head` ends curl early, as it does for a reader
        f"HUB_LOG={tmp_path}/hub",
        "hub_up() {",  # `onewindow hub ...`: in the background until its banner says ready
        # (the previous hub's output removed first: the background job truncates its files
        # only once it runs, and a grep before that read the earlier banner)
        '  rm -f "$HUB_LOG.out" "$HUB_LOG.err"',
        '  onewindow hub "$@" > "$HUB_LOG.out" 2> "$HUB_LOG.err" & HUB_PID=$!',
        '  until grep -qs " ready" "$HUB_LOG.out"; do',
        '    kill -0 $HUB_PID 2>/dev/null || { cat "$HUB_LOG.err" >&2; exit 1; }',
        "    sleep 0.1",
        "  done",
        '  cat "$HUB_LOG.out"',
        f"  curl -sf http://127.0.0.1:{web}/login > /dev/null",
        "}",
        # SIGTERM (systemd's stop): a background job of a script starts with SIGINT ignored,
        # so Ctrl-C's signal would be lost if it came before the hub set its handler
        'hub_down() { if [ -n "${HUB_PID:-}" ]; then kill -TERM $HUB_PID; wait $HUB_PID; '
        "HUB_PID=; fi; }",
        "cd repo",
    ]
    ran: list[str] = []
    skipped: list[str] = []
    blocks = sh_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) > 10
    for block in blocks:
        # each block in its own subshell: its `cd` and its hub end with it, also on a failure
        script += ["(", "trap hub_down EXIT"]
        for cmd in commands(block):
            why = next((r for p, r in NOT_HERE.items() if cmd.startswith(p)), None)
            if why is not None:
                skipped.append(cmd)
                if cmd.startswith("onewindow "):
                    onewindow_parses(cmd)
                continue
            run = cmd
            for prefix, (written, instead, _) in SHORTER.items():
                if run.startswith(prefix):
                    assert written in run, (cmd, written)
                    run = run.replace(written, instead)
            # PORTS: the README's ports, here free ones
            run = run.replace("11883", str(broker)).replace(":8080", f":{web}")
            if run.startswith("sed -i") and "embedded_port" in run:
                run += f" && sed -i 's/^port = 8080/port = {web}/' centre.toml"
            if re.match(r"onewindow user add\b", run) and "--password-stdin" not in run:
                run += f" --password-stdin <<< '{PASSWORD}'"  # it asks twice on a terminal
            if re.match(r"onewindow hub\b", run):
                run = "hub_up" + run[len("onewindow hub"):]
            if run.startswith("mkdir -p mycentre"):
                script.append(f"echo '### {cmd}'")
                script.append(run)
                continue
            script += [f"echo {shlex.quote('### ' + cmd)}", run]
            ran.append(cmd)
        script += ["hub_down", ")"]
        if any(c.startswith("mkdir -p mycentre") for c in commands(block)):
            script.append("cd mycentre")  # what follows runs where the five minutes end
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONUNBUFFERED="1")
    (tmp_path / "readme.sh").write_text("\n".join(script) + "\n", encoding="utf-8")
    done = subprocess.run(["bash", "readme.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=540)
    log = done.stdout[-6000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert "Traceback" not in done.stdout + done.stderr, log
    # what the README promised, seen
    out = done.stdout
    assert f"broker   embedded Mosquitto: devices mqtt://127.0.0.1:{broker}" in out, log
    assert "OneWindow hub mycentre ready" in out
    assert "added admin (admin)" in out
    centre = root / "mycentre"
    assert (centre / "plan" / "plan.csv").is_file() and (centre / "report" / "index.html").is_file()
    assert (centre / "centre-2026-12-05.tar").is_file()
    assert any(c.startswith("onewindow plan --evaluate") for c in ran)
    assert "onewindow_queue_waiting" in out  # the curl of /metrics
    # the catalog's name was changed, as the five minutes say
    assert "我的社区事务受理服务中心" in (centre / "catalog.json").read_text(encoding="utf-8")
    assert skipped, "NOT_HERE names nothing the README has: drop it"


@pytest.mark.parametrize("prefix", sorted(NOT_HERE))
def test_each_command_not_run_here_is_still_in_the_readme(prefix):
    text = "\n".join(c for b in sh_blocks(README.read_text(encoding="utf-8"))
                     for c in commands(b))
    assert prefix in text, f"{prefix}: no longer in the README; drop it from NOT_HERE"
