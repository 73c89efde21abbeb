"""A kiosk node gives a priority ticket (爱心优先) to a resident 60 or older, from the birth
date in their ID card, worked out on the node: the real NodeApp and NodeLink, a private
Mosquitto, the hub process, and (last test) pcscd with the vpcd virtual reader and our virtual
card. A raw MQTT client follows everything under the centre's topics: neither the number nor
the birth date crosses the broker, only the class "priority"."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import date

import aiomqtt
import pytest

from onewindow.node.app import local_date
from onewindow.node.card import PcscReader
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, quiet_port, write_config

from .test_node_e2e import Card, Hall, journal, start_node, token

pytestmark = pytest.mark.timeout(60)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(born: date, seq: str) -> str:
    first17 = f"310101{born:%Y%m%d}{seq}"
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


# Ages against the node's own date (NodeApp's default `today`): born on 1 January seventy and
# thirty years ago.
TODAY = local_date()
BORN_70, BORN_30 = date(TODAY.year - 70, 1, 1), date(TODAY.year - 30, 1, 1)
ELDER, YOUNGER = id_number(BORN_70, "123"), id_number(BORN_30, "456")


def secrets_of(number: str, born: date) -> list[bytes]:
    """What must never cross the broker for this card: the number, its parts that name the
    person, and the birth date however written."""
    return [s.encode() for s in (number, number[:14], f"{born:%Y%m%d}", born.isoformat(),
                                 f"{born:%Y/%m/%d}", f"{born:%Y年%m月%d日}")]


@pytest.fixture
async def hall(tmp_path) -> AsyncIterator[Hall]:
    devices = [{"id": "kiosk-1", "role": "kiosk"}, {"id": "box-1", "role": "box"}]
    web_port = quiet_port()
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=2, devices=devices, extra=f"\n[web]\nport = {web_port}\n")
        proc = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield Hall(broker, tmp_path, proc, web_port)
        finally:
            proc.stop()


class Wiretap:
    """Every message published under the centre's topics (`ow/n1/#`), retained ones too."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.arrived = asyncio.Condition()

    async def until(self, check: Callable[[list[tuple[str, bytes]]], bool], what: str,
                    timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout), self.arrived:
                await self.arrived.wait_for(lambda: check(self.seen))
        except TimeoutError:
            pytest.fail(f"after {timeout} s, still waiting for: {what}")


@contextlib.asynccontextmanager
async def wiretap(broker: Mosquitto) -> AsyncIterator[Wiretap]:
    """A `Wiretap` subscribed before the block starts, listening while it runs."""
    tap = Wiretap()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("ow/n1/#", qos=1)

        async def listen() -> None:
            async for m in client.messages:
                async with tap.arrived:
                    tap.seen.append((str(m.topic), bytes(m.payload)))
                    tap.arrived.notify_all()

        task = asyncio.create_task(listen())
        try:
            yield tap
        finally:
            task.cancel()


def takes(seen: list[tuple[str, bytes]]) -> list[bytes]:
    return [p for t, p in seen if t == "ow/n1/dev/kiosk-1/evt" and b'"take"' in p]


def printed(seen: list[tuple[str, bytes]]) -> int:
    """Print commands to the kiosk that it acknowledged as printed."""
    ids = {json.loads(p)["id"] for t, p in seen
           if t == "ow/n1/dev/kiosk-1/cmd" and json.loads(p)["type"] == "print"}
    return sum(1 for t, p in seen if t == "ow/n1/dev/kiosk-1/ack"
               and json.loads(p)["id"] in ids and json.loads(p)["ok"])


def take_records(hall: Hall) -> dict[str, dict]:
    return {r["resident"]: r for r in journal(hall.tmp) if r["op"] == "take"}


def assert_nothing_leaked(seen: list[tuple[str, bytes]], cards: list[tuple[str, date]]) -> None:
    assert seen, "the wiretap saw nothing"
    for topic, payload in seen:
        for number, born in cards:
            for secret in secrets_of(number, born):
                assert secret not in payload, f"{secret!r} crossed the broker on {topic}"
        with contextlib.suppress(ValueError):
            leaked = keys_of(json.loads(payload)) & PERSONAL_KEYS
            assert not leaked, f"{leaked} crossed the broker on {topic}"
    # the node's take says what the protocol's take says, and no more
    for payload in takes(seen):
        assert set(json.loads(payload)) <= TAKE_KEYS, payload


PERSONAL_KEYS = {"birth", "birth_date", "birthday", "born", "dob", "age", "ident", "id_number"}
TAKE_KEYS = {"v", "dev", "seq", "type", "ts", "item", "resident", "priority"}


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value))
    return set()


async def test_a_70_year_olds_card_takes_a_priority_ticket_a_30_year_olds_a_normal_one(hall):
    paper: list[bytes] = []

    class ListPrinter:
        write = paper.append

    async with wiretap(hall.broker) as tap:
        app, task = await start_node(hall, "kiosk-1", "kiosk", printer=ListPrinter())
        try:
            assert await app.card(Card(ident=ELDER))
            assert await app.card(Card(ident=YOUNGER))
            await tap.until(lambda seen: len(takes(seen)) == 2 and printed(seen) == 2,
                            "both takes on the wire and both tickets printed")
        finally:
            task.cancel()
    seen = tap.seen
    assert len(paper) == 2
    records = take_records(hall)
    assert records[token(ELDER)]["priority"] == "priority"
    assert records[token(YOUNGER)]["priority"] == "normal"
    elder_take, younger_take = takes(seen)
    assert b'"priority": "priority"' in elder_take and b'"priority"' not in younger_take
    assert [e["priority"] for e in app.log if e["what"] == "take"] == ["priority", "normal"]
    assert_nothing_leaked(seen, [(ELDER, BORN_70), (YOUNGER, BORN_30)])
    # nor is either in the hub's journal
    text = b"".join(f.read_bytes() for f in hall.tmp.glob("hub.db*"))
    for number, born in ((ELDER, BORN_70), (YOUNGER, BORN_30)):
        assert number.encode() not in text and f"{born:%Y%m%d}".encode() not in text


async def test_a_70_year_olds_virtual_card_on_a_real_reader(hall, pcscd_vcard):
    """pcscd, vpcd and the virtual card: the card's number is read through PC/SC, the class
    worked out on the node, the ticket journaled as priority, nothing else on the wire."""
    paper: list[bytes] = []

    class ListPrinter:
        write = paper.append

    reader = PcscReader(readers=[pcscd_vcard.reader])
    await reader.start()
    try:
        async with wiretap(hall.broker) as tap:
            app, task = await start_node(hall, "kiosk-1", "kiosk", printer=ListPrinter(),
                                         cards=reader)
            try:
                card = pcscd_vcard(uid=bytes.fromhex("04a1b2c3d4e5f7"), ident=ELDER)
                card.insert()
                await tap.until(lambda seen: len(takes(seen)) == 1 and printed(seen) == 1,
                                "the tap's ticket printed")
                card.remove()
            finally:
                task.cancel()
    finally:
        await reader.close()
    seen = tap.seen
    assert len(paper) == 1
    [record] = take_records(hall).values()
    assert record["resident"] == token(ELDER) and record["priority"] == "priority"
    assert [e["priority"] for e in app.log if e["what"] == "take"] == ["priority"]
    assert_nothing_leaked(seen, [(ELDER, BORN_70)])
