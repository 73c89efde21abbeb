"""The operator's view of a running hub (issue 18): `GET /metrics` in the Prometheus text
exposition format, scraped from a real `onewindow hub` process with a ticket waiting (the
queue per line, the longest wait, the devices, the MQTT messages, the journal position),
access controlled (loopback only, or `[metrics] token` from anywhere); and its logs, one
JSON object per line with `--log-json` / `[log] format = "json"`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import terminate

TOKEN = "metrics-token-0123456789"


def noon_offset() -> int:
    """A UTC offset at which it is about noon now: the centre is open whatever the hour."""
    utc = time.gmtime()
    offset = 12 * 60 - (utc.tm_hour * 60 + utc.tm_min)
    return offset + 1440 if offset < -720 else offset - 1440 if offset > 840 else offset


def write_centre(tmp_path: Path, broker: int, web: int, extra: str = "") -> Path:
    cfg = tmp_path / "centre.toml"
    cfg.write_text(f"""
[centre]
id = "mx"
utc_offset_minutes = {noon_offset()}
[hours]
weekdays = "00:01-23:59"
sat = "00:01-23:59"
sun = "00:01-23:59"
[admission]
mode = "off"
[store]
url = "sqlite:///{tmp_path / 'hub.db'}"
[broker]
embedded_port = {broker}
[web]
port = {web}
[[windows]]
number = 1
[[devices]]
id = "box-1"
role = "box"
[[devices]]
id = "kp-1"
role = "keypad"
window = 1
{extra}
""", encoding="utf-8")
    return cfg


def start_hub(cfg: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "onewindow.hub.cli", "hub", "--config", str(cfg), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cfg.parent,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # the banner's first line once it serves
    assert " ready" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def scrape(url: str, token: str | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers["content-type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_from_a_real_hub_with_a_ticket_waiting(tmp_path):
    broker, web = quiet_port(pair=True), quiet_port()
    proc = start_hub(write_centre(tmp_path, broker, web))
    try:
        async with SimDevice("mx", "box-1", "box", "127.0.0.1", broker) as box:
            await box.birth()
            reply = await box.take("SOC-001", "A")
            assert not reply.get("offline"), reply
            status, kind, text = scrape(f"http://127.0.0.1:{web}/metrics")
    finally:
        assert terminate(proc, 10) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
    assert status == 200 and kind.startswith("text/plain; version=0.0.4"), (status, text)
    got = samples(text)  # parsed by prometheus_client's own parser: the format holds
    assert got[("onewindow_queue_waiting", (("line", "social"),))] == 1
    assert got[("onewindow_queue_waiting", (("line", "civil"),))] == 0
    assert got[("onewindow_wait_longest_seconds", (("line", "social"),))] >= 0
    assert got[("onewindow_tickets_today", (("state", "waiting"),))] == 1
    assert got[("onewindow_devices_online", (("role", "box"),))] == 1
    assert got[("onewindow_devices_online", (("role", "keypad"),))] == 0
    assert got[("onewindow_mqtt_messages_received_total", ())] >= 2  # birth and take
    assert got[("onewindow_mqtt_messages_published_total", ())] >= 1  # the take's res
    assert got[("onewindow_mqtt_unsent", ())] == 0
    assert got[("onewindow_journal_position", ())] >= 1
    assert got[("onewindow_storage_available", ())] == 1
    assert got[("onewindow_broker_connected", ())] == 1
    assert got[("onewindow_message_failures_total", (("kind", "internal"),))] == 0
    assert got[("onewindow_windows", (("state", "closed"),))] == 1
    assert "Traceback" not in stderr


def test_metrics_token_and_json_logs(tmp_path):
    broker, web = quiet_port(pair=True), quiet_port()
    cfg = write_centre(tmp_path, broker, web, f'[metrics]\ntoken = "{TOKEN}"\n')
    proc = start_hub(cfg, "--log-json")
    try:
        url = f"http://127.0.0.1:{web}/metrics"
        no_token = scrape(url)
        wrong = scrape(url, "x" * 24)
        right = scrape(url, TOKEN)
        with socket.create_connection(("127.0.0.1", web), timeout=10) as bad:
            bad.sendall(b"NOT HTTP\r\n\r\n")  # uvicorn logs a warning: a JSON line too
            bad.recv(1024)
    finally:
        assert terminate(proc, 10) == 0
    assert no_token[0] == 401 and wrong[0] == 401
    assert right[0] == 200 and "onewindow_queue_waiting" in right[2]
    assert proc.stderr is not None
    lines = [line for line in proc.stderr.read().splitlines() if line.strip()]
    assert lines, "the hub logged nothing"
    events = [json.loads(line) for line in lines]  # every line one JSON object
    assert {"ts", "level", "logger", "msg"} <= set(events[0])
    assert any(e["logger"] == "onewindow.broker" for e in events)
    assert any(e["logger"].startswith("uvicorn") for e in events), events


def test_metrics_refused_from_another_address_without_a_token(tmp_path):
    """Loopback only: the hub on all interfaces, scraped at the machine's own LAN address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing address
        lan = s.getsockname()[0]
    broker, web = quiet_port(pair=True), quiet_port()
    cfg = write_centre(tmp_path, broker, web)
    cfg.write_text(cfg.read_text().replace("[web]\n", '[web]\nhost = "0.0.0.0"\n'))
    proc = start_hub(cfg)
    try:
        here = scrape(f"http://127.0.0.1:{web}/metrics")
        there = scrape(f"http://{lan}:{web}/metrics") if not lan.startswith("127.") else None
    finally:
        assert terminate(proc, 10) == 0
    assert here[0] == 200
    if there is not None:  # a machine with no other address has no "elsewhere" to try
        assert there[0] == 403 and "[metrics] token" in there[2]


def test_metrics_can_be_turned_off(tmp_path):
    broker, web = quiet_port(pair=True), quiet_port()
    proc = start_hub(write_centre(tmp_path, broker, web, "[metrics]\nenabled = false\n"))
    try:
        status, _, _ = scrape(f"http://127.0.0.1:{web}/metrics")
    finally:
        assert terminate(proc, 10) == 0
    assert status == 404
