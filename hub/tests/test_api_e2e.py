"""The other systems' API through the real `onewindow hub` process (a real Mosquitto, the
web port over TCP): a credential made with the `onewindow api-client` command, tickets issued
and a window called over /api/v1 alongside a keypad, a booking made and, after the hub is
stopped and started again (state rebuilt from the journal, whose records name the client),
cancelled, and a repeated take with the first one's Idempotency-Key answers that ticket; a
revocation by the command takes effect on the running hub at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from onewindow.hub.fleet.registry import Fleet
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    offset_for_local,
    quiet_port,
    write_config,
)

from .test_notices_e2e import web

pytestmark = pytest.mark.timeout(180)
CENTRE = "ap"
ALL_DAY = '"00:00-23:59"'


def journal(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "api-client", *args,
                           "-c", str(cfg)], capture_output=True, text=True, timeout=60)


async def test_the_api_on_the_running_hub_across_a_restart(tmp_path):
    web_port = quiet_port()
    db = tmp_path / "hub.db"
    Fleet(f"sqlite:///{db}").secret(create=True)  # signs booking codes, seals numbers
    offset = offset_for_local("12:00")
    local_today = dt.datetime.now(dt.timezone(dt.timedelta(minutes=offset))).date()
    extra = (f"\n[web]\nport = {web_port}\n"
             f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n")
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", CENTRE, broker.port, db, windows=1,
                           extra=extra, utc_offset_minutes=offset)
        made = cli(cfg, "add", "--name", "city-platform", "--expires",
                   f"{local_today + dt.timedelta(days=30)}",
                   "--scopes", "tickets:write,tickets:read,queue:call,bookings:write")
        assert made.returncode == 0, made.stderr
        secret = made.stdout.strip()
        assert secret.startswith("owk_") and secret not in made.stderr
        auth = {"Authorization": f"Bearer {secret}"}
        url = f"http://127.0.0.1:{web_port}"
        hub = HubProcess(cfg, tmp_path / "hub.log").start()
        kp = SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", broker.port, window=1)
        try:
            async with web(url, hub), httpx.AsyncClient(base_url=url, headers=auth,
                                                        timeout=10) as api, kp:
                doc = (await api.get("/api/v1/openapi.json")).json()
                assert "/api/v1/tickets" in doc["paths"]
                await kp.send("open", timeout=30, retry=0.5)
                r = await api.post("/api/v1/tickets", json={"item": "SOC-001", "lang": "en"},
                                   headers={"Idempotency-Key": "order-1"})
                assert r.status_code == 201, r.text
                first = r.json()
                assert first["number"] == "A001" and first["estimate"] is not None
                r = await api.post("/api/v1/tickets", json={"item": "SOC-001"})
                second = r.json()
                r = await api.post("/api/v1/windows/1/call")
                assert r.status_code == 200 and r.json()["called"]["id"] == first["id"]
                r = await api.get("/api/v1/slots", params={"item": "SOC-001"})
                assert r.status_code == 200, r.text
                slot = next(s["slot"] for s in r.json()["slots"] if s["free"] > 0)
                r = await api.post("/api/v1/bookings", json={
                    "item": "SOC-001", "slot": slot, "phone": "13812345678"})
                assert r.status_code == 201, r.text
                code = r.json()["code"]
            assert hub.stop() is not None

            hub.start()  # the state from the journal
            async with web(url, hub), httpx.AsyncClient(base_url=url, headers=auth,
                                                        timeout=10) as api:
                got = (await api.get(f"/api/v1/tickets/{first['id']}")).json()
                assert (got["state"], got["window"]) == ("called", 1)
                r = await api.post("/api/v1/tickets", json={"item": "SOC-001"},
                                   headers={"Idempotency-Key": "order-1"})
                assert r.status_code == 200 and r.json()["id"] == first["id"]  # not again
                q = (await api.get("/api/v1/windows/1/queue")).json()
                assert q["serving"]["id"] == first["id"]
                assert [t["id"] for t in q["next"]] == [second["id"]]
                r = await api.delete(f"/api/v1/bookings/{code}")
                assert r.status_code == 200, r.text
                revoked = cli(cfg, "revoke", "--name", "city-platform")
                assert revoked.returncode == 0, revoked.stderr
                r = await api.get("/api/v1/lines")
                assert (r.status_code, r.json()["code"]) == (401, "revoked_token")
        finally:
            assert hub.stop() is not None
    mine = [(r["op"], r.get("via")) for r in journal(db)
            if r["op"] in ("take", "call", "book", "cancel_booking")]
    assert mine == [("take", "api:city-platform"), ("take", "api:city-platform"),
                    ("call", "api:city-platform"), ("book", "api:city-platform"),
                    ("cancel_booking", "api:city-platform")]
    log = (tmp_path / "hub.log").read_text()
    assert "13812345678" not in log and secret not in log
    assert "13812345678" not in json.dumps(journal(db))
