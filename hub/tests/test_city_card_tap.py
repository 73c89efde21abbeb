"""A card tapped over MQTT in a city (issue 20): the hub's batch path (hub/runner.py) answers
a kiosk's `pickup` by card and a window's `card` with the card's open cases anywhere in the
city (`city`), asked of the city after the commit; other events are answered as before.
In-process, no broker (the runner keeps what it would publish); the real path, through a
real broker, hub process and router, is in test_city_e2e.py (the card tapped at c07's
kiosk)."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.runner import CITY_CASE_FIELDS, HubRunner, build_app
from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.testkit.testbed import write_config

CENTRE = "tap"
NOW = 1_795_000_000.0
CARD = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"
ROWS = [{"key": "c05/20261102-A001", "item": "SOC-1", "state": "open",
         "due_day": "2026-11-23", "approver": "c05", "pickup": "c05", "centre": "c05",
         "token": CARD, "version": 1}]


def _message(dev: str, seq: int, typ: str, **fields: Any) -> aiomqtt.Message:
    payload = proto.encode("evt", proto.event(dev, seq, typ, **fields))
    return aiomqtt.Message(proto.device_topic(CENTRE, dev, "evt"), payload, qos=1,
                           retain=False, mid=1, properties=None)


@pytest.fixture
def runner(tmp_path, small_catalog_file):
    devices = [{"id": "kiosk-1", "role": "kiosk"}, {"id": "kp-1", "role": "keypad", "window": 1}]
    cfg = hub_config.load(write_config(tmp_path / "centre.toml", CENTRE, None,
                                       tmp_path / "hub.db", windows=1, devices=devices,
                                       catalog=small_catalog_file))
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    r = HubRunner(build_app(cfg, journal), journal, None, clock=lambda: NOW)  # type: ignore[arg-type]
    yield r
    journal.close()


def _answers(runner: HubRunner, leaf: str) -> list[dict[str, Any]]:
    """What the runner would have published on devices' `leaf` topics (no broker here:
    it keeps them for the next connection)."""
    return [json.loads(p.payload) for p in runner._unsent if p.topic.endswith("/" + leaf)]


async def _settled(runner: HubRunner) -> None:
    for task in list(runner._tap_tasks):
        await task


async def test_a_card_tap_is_answered_with_its_cases_in_the_city(runner) -> None:
    asked: list[str] = []

    async def city(token: str) -> list[dict[str, Any]] | None:
        asked.append(token)
        return ROWS

    runner.card_cases = city
    await runner._handle_batch([_message("kiosk-1", 1, "pickup", resident=CARD)])
    await _settled(runner)
    # No [pickup] item here: refused, and the refusal carries the card's city cases, the
    # router's fields but the token and the version.
    [err] = _answers(runner, "err")
    assert err["code"] == "no_pickup" and err["seq"] == 1
    assert err["city"] == [{k: ROWS[0][k] for k in CITY_CASE_FIELDS}]
    assert CARD not in json.dumps(err) and asked == [CARD]
    # A window's card look-up: its answer too.
    await runner._handle_batch([_message("kp-1", 1, "open", clerk="li"),
                                _message("kp-1", 2, "card", resident=CARD)])
    await _settled(runner)
    card = [r for r in _answers(runner, "res") if r["type"] == "card"]
    assert [r["city"] for r in card] == [err["city"]] and asked == [CARD, CARD]
    # Other events with a card (a take) are answered as before, without asking the city.
    await runner._handle_batch([_message("kiosk-1", 2, "take", item="SOC-1", resident=CARD)])
    [take] = [r for r in _answers(runner, "res") if r["type"] == "take"]
    assert "city" not in take and asked == [CARD, CARD] and not runner._taps


async def test_a_city_that_does_not_answer_gives_null(runner) -> None:
    async def silent(token: str) -> list[dict[str, Any]] | None:
        return None  # cut off: hub/city/features.py answers None at once

    runner.card_cases = silent
    await runner._handle_batch([_message("kiosk-1", 1, "pickup", resident=CARD)])
    await _settled(runner)
    [err] = _answers(runner, "err")
    assert err["code"] == "no_pickup" and err["city"] is None


async def test_outside_a_city_nothing_changes(runner) -> None:
    await runner._handle_batch([_message("kiosk-1", 1, "pickup", resident=CARD)])
    [err] = _answers(runner, "err")
    assert "city" not in err and not runner._tap_tasks
