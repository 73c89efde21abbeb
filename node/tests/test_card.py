"""The card reader against a real pcscd, the vpcd virtual reader and our virtual card."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from onewindow.node.card import (
    OW_AID,
    CardEvent,
    CardReader,
    EventBridge,
    PcscReader,
    mask_id,
    resident_token,
)
from onewindow.tools.testkit.vcard import DEFAULT_ATR, UNKNOWN_ATR, CardApplet


def id_number(first17: str) -> str:
    """A resident ID number with its GB 11643 check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


IDENT = id_number("31010119900101123")
UID = bytes.fromhex("04a1b2c3d4e5f6")


# -- privacy ------------------------------------------------------------------------------------


def test_resident_token_is_keyed_and_hides_the_number():
    a = resident_token(b"centre-a-secret", IDENT)
    b = resident_token(b"centre-b-secret", IDENT)
    assert len(a) == len(b) == 32
    assert a != b
    assert a == resident_token(b"centre-a-secret", IDENT)  # stable: the same resident again
    assert a == resident_token(b"centre-a-secret", " " + IDENT.lower() + " ")  # normalised
    for token in (a, b):
        assert IDENT not in token and IDENT[-4:] not in token.upper()
        assert IDENT[:6] not in token
    other = resident_token(b"centre-a-secret", id_number("31010119900101124"))
    assert other != a
    # a UID and an identifier never share a token, even with the same bytes
    assert resident_token(b"k", b"1234") != resident_token(b"k", "1234")
    assert UID.hex() not in resident_token(b"k", UID)
    with pytest.raises(ValueError):
        resident_token(b"", IDENT)


def test_mask_id_and_event_repr_hide_the_number():
    assert mask_id("310101199001011237") == "3101**********1237"
    assert mask_id("12345678") == "********"
    assert mask_id(None) == mask_id("") == ""
    event = CardEvent("inserted", "r", DEFAULT_ATR, UID, IDENT)
    assert IDENT not in repr(event) and IDENT not in str(event)
    assert mask_id(IDENT) in repr(event)
    assert event.identity == IDENT
    assert CardEvent("inserted", "r", b"", UID).identity == UID


# -- the virtual card on its own ----------------------------------------------------------------


def test_applet_answers():
    card = CardApplet(uid=UID, ident=IDENT)
    assert card.respond(bytes.fromhex("FFCA000000")) == UID + b"\x90\x00"
    assert card.respond(bytes.fromhex("00B0000000")) == b"\x69\x86"  # nothing selected
    select = bytes([0, 0xA4, 4, 0, len(OW_AID)]) + OW_AID + b"\x00"
    assert card.respond(select) == b"\x90\x00"
    assert card.respond(bytes.fromhex("00B0000000")) == IDENT.encode() + b"\x90\x00"
    assert card.respond(bytes.fromhex("00B0000404")) == IDENT[4:8].encode() + b"\x90\x00"
    assert card.respond(bytes.fromhex("00A4040003A0000000")) == b"\x6a\x82"
    assert card.respond(bytes.fromhex("00CA010100")) == b"\x6d\x00"
    assert card.respond(b"\x00") == b"\x67\x00"
    plain = CardApplet(atr=UNKNOWN_ATR)
    assert plain.respond(bytes.fromhex("FFCA000000")) == b"\x6e\x00"
    assert plain.respond(select) == b"\x6a\x82"


# -- the pyscard thread -> asyncio bridge -------------------------------------------------------


async def test_bridge_from_another_thread():
    bridge = EventBridge(asyncio.get_running_loop(), maxsize=4)
    sent = [CardEvent("inserted", f"r{i}") for i in range(3)]

    def producer():
        for event in sent:
            assert bridge.post(event)

    thread = threading.Thread(target=producer)
    thread.start()
    got = [await asyncio.wait_for(bridge.get(), 2) for _ in sent]
    thread.join()
    assert got == sent

    # a stuck consumer: the bounded queue keeps the newest events, counts the dropped ones
    many = [CardEvent("removed", f"r{i}") for i in range(10)]
    await asyncio.to_thread(lambda: [bridge.post(e) for e in many])
    await asyncio.sleep(0)  # let the loop run the scheduled puts
    kept = [bridge.queue.get_nowait() for _ in range(bridge.queue.qsize())]
    assert kept == many[-4:]
    assert bridge.dropped == 6


def test_bridge_after_the_loop_closed():
    loop = asyncio.new_event_loop()
    bridge = EventBridge(loop)
    loop.close()
    assert bridge.post(CardEvent("removed", "r")) is False  # no exception into pyscard's thread


# -- through pcscd ------------------------------------------------------------------------------


async def test_insert_read_and_remove(pcscd_vcard):
    card = pcscd_vcard(uid=UID, ident=IDENT)
    async with PcscReader(readers=[pcscd_vcard.reader]) as reader:
        assert isinstance(reader, CardReader)
        await asyncio.to_thread(card.insert)
        event = await reader.next_event(5)
        assert event.kind == "inserted"
        assert event.reader == pcscd_vcard.reader
        assert event.atr == DEFAULT_ATR
        assert event.uid == UID
        assert event.ident == IDENT
        assert event.error is None
        assert reader.status == "ok"

        card.remove()
        event = await reader.next_event(5)
        assert event.kind == "removed"
        assert event.atr == DEFAULT_ATR
        assert event.ident is None and event.uid is None


async def test_unknown_card_gives_an_error_event_and_the_reader_goes_on(pcscd_vcard):
    unknown = pcscd_vcard(atr=UNKNOWN_ATR)  # contact card: no UID, no OneWindow application
    uid_only = pcscd_vcard(uid=bytes.fromhex("a1b2c3d4"))  # e.g. a MIFARE card: UID, no app
    garbled = pcscd_vcard(uid=UID, ident="\x01\x02")  # the application answers rubbish
    good = pcscd_vcard(uid=UID, ident=IDENT)
    async with PcscReader(readers=[pcscd_vcard.reader]) as reader:
        unknown.insert()
        event = await reader.next_event(5)
        assert (event.kind, event.atr, event.uid, event.ident) == (
            "inserted",
            UNKNOWN_ATR,
            None,
            None,
        )
        assert event.error and "unknown card" in event.error
        unknown.remove()
        assert (await reader.next_event(5)).kind == "removed"

        uid_only.insert()
        event = await reader.next_event(5)
        assert (event.uid, event.ident, event.error) == (bytes.fromhex("a1b2c3d4"), None, None)
        assert event.identity == bytes.fromhex("a1b2c3d4")
        uid_only.remove()
        assert (await reader.next_event(5)).kind == "removed"

        garbled.insert()
        event = await reader.next_event(5)
        assert (event.uid, event.ident) == (UID, None)
        assert event.error and "unreadable" in event.error
        garbled.remove()
        assert (await reader.next_event(5)).kind == "removed"

        good.insert()
        event = await reader.next_event(5)
        assert (event.uid, event.ident, event.error) == (UID, IDENT, None)


async def test_card_already_present_and_async_for_until_close(pcscd_vcard):
    from .conftest import wait_reader

    card = pcscd_vcard(uid=UID, ident=IDENT)
    card.insert()
    await asyncio.to_thread(wait_reader, pcscd_vcard.reader, True)
    reader = PcscReader(readers=[pcscd_vcard.reader])
    await reader.start()
    seen: list[CardEvent] = []
    inserted = asyncio.Event()

    async def consume():
        async for event in reader:
            seen.append(event)
            if event.kind == "inserted":
                inserted.set()
            if event.kind == "removed":
                await reader.close()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(inserted.wait(), 5)  # the card already in is reported first
    card.remove()
    await asyncio.wait_for(task, 5)  # iteration ends when the reader closes
    assert [e.kind for e in seen] == ["inserted", "removed"]
    assert seen[0].ident == IDENT


async def test_reader_filter_ignores_other_readers(pcscd_vcard):
    card = pcscd_vcard(uid=UID, ident=IDENT)
    async with PcscReader(readers=["no such reader"]) as reader:
        card.insert()
        with pytest.raises(TimeoutError):
            await reader.next_event(1.0)
        assert reader.status == "no reader"


async def test_taps_at_random_moments_each_give_one_insert_and_one_remove(pcscd_vcard):
    """vpcd has no card-event interrupt: pcscd polls it every 400 ms, so where in that period
    a card arrives varies; residents tap at random moments, and so does this test. Each tap
    is one "inserted" with the identifier read and one "removed", never more, never fewer.
    (How long a tap takes to reach the printer: tools/bench/bench_node_card.py.)"""
    rng = random.Random(5)
    card = pcscd_vcard(uid=UID, ident=IDENT)
    async with PcscReader(readers=[pcscd_vcard.reader]) as reader:
        for _ in range(20):
            # the moment of the tap within pcscd's poll period: a pacing, not a wait
            await asyncio.sleep(rng.uniform(0, 0.4))
            card.insert()
            event = await reader.next_event(5)
            assert (event.kind, event.ident, event.error) == ("inserted", IDENT, None)
            card.remove()
            assert (await reader.next_event(5)).kind == "removed"
        assert reader.bridge.queue.empty() and reader.bridge.dropped == 0


async def test_pcscd_restarted_under_a_running_reader(pcscd, pcscd_vcard):
    """pcscd restarted while the node's reader loop runs (an apt upgrade, a crash and
    systemd's restart): the card in the reader is reported removed ("pcscd went away"), the
    reader does not crash and reads the next card once pcscd is back."""
    card = pcscd_vcard(uid=UID, ident=IDENT)
    try:
        await _restart_under_reader(pcscd, pcscd_vcard, card)
    finally:  # the other tests need pcscd back, whatever happened here
        if pcscd.proc.poll() is not None:
            await asyncio.to_thread(pcscd.start)


async def _restart_under_reader(pcscd, pcscd_vcard, card):
    async with PcscReader(readers=[pcscd_vcard.reader], retry_s=0.2) as reader:
        thread = reader._thread
        await asyncio.to_thread(card.insert)
        event = await reader.next_event(5)
        assert (event.kind, event.ident, event.error) == ("inserted", IDENT, None)

        before = pcscd.proc.pid
        await asyncio.to_thread(pcscd.stop)  # the card is still in
        event = await reader.next_event(10)
        # Stopping, pcscd lets its readers go before its service: a reader loop between two
        # waits may see the reader leave the list first ("reader gone", as a fresh-clone CI
        # run did) rather than the service ("pcscd went away"). Either way the card is out,
        # with the reason, and the node's status then says pcscd is gone.
        assert event.kind == "removed" and event.error in ("pcscd went away", "reader gone")
        for _ in range(200):  # the loop's next look at pcscd: at most its retry and poll
            if reader.status == "no pcscd":
                break
            await asyncio.sleep(0.05)
        assert reader.status == "no pcscd"  # what the node's status reports meanwhile
        card.remove()  # vpcd went with pcscd: the card is out
        await asyncio.to_thread(pcscd.start)
        assert pcscd.proc.pid != before and reader._thread is thread and thread.is_alive()

        await asyncio.to_thread(card.insert)  # the next resident taps
        event = await reader.next_event(15)
        assert (event.kind, event.ident, event.error) == ("inserted", IDENT, None)
        assert reader.status == "ok"
        assert reader._thread is thread and thread.is_alive()  # the same loop, not a new one
        card.remove()
        assert (await reader.next_event(5)).kind == "removed"
