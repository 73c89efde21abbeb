"""Centre settings that only a running hub can show are wired through (`onewindow hub`, a
real Mosquitto, a box speaking the protocol): [centre] slip_chinese prints Traditional, and
[admission] mode decides what a take on a day the centre is closed gets. The day is made a
holiday (today and tomorrow, local time, in case midnight passes during the test), so the
verdict is "closed" whatever the hour the suite runs at."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from onewindow.hub.render.escpos_decode import decode
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, write_config

pytestmark = pytest.mark.timeout(60)
CST = dt.timezone(dt.timedelta(hours=8))


def closed_today() -> str:
    today = dt.datetime.now(CST).date()
    return json.dumps([today.isoformat(), (today + dt.timedelta(days=1)).isoformat()])


def takes(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        rows = [json.loads(b) for (b,) in conn.execute("select body from journal")]
    return [r for r in rows if r.get("op") == "take"]


async def start(tmp: Path, broker: Mosquitto, extra: str) -> HubProcess:
    cfg = write_config(tmp / "centre.toml", "n1", broker.port, tmp / "hub.db", windows=2,
                       extra=extra)
    text = cfg.read_text().replace("[centre]\n", f"[centre]\nholidays = {closed_today()}\n", 1)
    cfg.write_text(text)
    return HubProcess(cfg, tmp / "hub.log").start()


async def test_warn_mode_issues_and_prints_that_it_is_closed_today(tmp_path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        proc = await start(tmp_path, broker, '\n[admission]\nmode = "warn"\n')
        try:
            async with SimDevice("n1", "box-1", "box", "127.0.0.1", broker.port) as box:
                await box.send("take", timeout=30, item="SOC-001")
                printed = await box.next_command("print", timeout=10)
        finally:
            proc.stop()
    texts = " ".join(decode(base64.b64decode(printed["escpos"]))["texts"])
    assert "预计无法在今日办理" in texts  # Simplified by default, warned: closed today
    [take] = takes(tmp_path / "hub.db")
    assert take.get("adm") is not None  # the verdict kept in the record


async def test_traditional_slips_and_stop_mode_through_the_real_hub(tmp_path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        proc = await start(tmp_path, broker, '\n[admission]\nmode = "stop"\n')
        cfg = tmp_path / "centre.toml"
        try:
            async with SimDevice("n1", "box-1", "box", "127.0.0.1", broker.port) as box:
                with pytest.raises(DeviceError) as refused:
                    await box.send("take", timeout=30, item="SOC-001")
                assert refused.value.reply["code"] == "day_full"
        finally:
            proc.stop()
        assert takes(tmp_path / "hub.db") == []  # refused: nothing journaled
        # The same centre printing Traditional, admission off: the ticket's fixed lines
        # and names are Traditional.
        text = cfg.read_text().replace('mode = "stop"', 'mode = "off"')
        cfg.write_text(text.replace("[centre]\n", '[centre]\nslip_chinese = "zh_TW"\n', 1))
        proc = HubProcess(cfg, tmp_path / "hub2.log").start()
        try:
            async with SimDevice("n1", "box-1", "box", "127.0.0.1", broker.port) as box:
                await box.send("take", timeout=30, item="SOC-001")
                printed = await box.next_command("print", timeout=10)
        finally:
            proc.stop()
    texts = " ".join(decode(base64.b64decode(printed["escpos"]))["texts"])
    assert "前面還有" in texts and "前面还有" not in texts
    assert "預計無法在今日辦理" not in texts  # admission off: no verdict, no warning
