"""The SMS notice channel (hub/notify/smpp.py) against an SMPP 3.4 gateway.

No real SMPP server can be installed on this machine, so the gateway is the protocol-level
stand-in tools/testkit/smppd.py: an asyncio TCP server on loopback that speaks the real
PDUs (bind_transceiver, submit_sm, enquire_link, unbind, deliver_sm receipts), decodes
them independently of the channel, joins concatenated parts as a phone does, and can be
told to throttle, to drop the connection or to refuse a destination. One test also runs
the `smpp34` library's SMPP server (a Rust codec written apart from both) as a cross-check
of the PDUs."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from onewindow.hub.notify.channel import Notice, Permanent, Retryable, Sent, Texts, notice_id
from onewindow.hub.notify.phones import PhoneVault, parse_phone
from onewindow.hub.notify.retry import RetryingChannel, RetryPolicy, deliver
from onewindow.hub.notify.smpp import Receipt, SmppChannel, SmppConfig
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.smppd import SmppStandIn

NUMBER = "13812345678"
VAULT = PhoneVault(b"k" * 32, "c1")
FAST = RetryPolicy(attempts=4, first=0.01, factor=2.0, max_delay=0.05)
LONG_ZH = ("【某街道社区事务受理服务中心】您的A017号快到了：前面还有3人，预计约12分钟，请回到"
           "大厅留意叫号。过号将顺延至队尾一次，再次过号需重新取号。办理时请携带身份证原件"
           "及相关材料，如需帮助请咨询大厅引导员。本中心工作日上午九点至下午五点对外办公，"
           "中午不休息；周六上午提供延时服务。感谢您的耐心等候，祝您办事顺利！")


def config(port: int, **kw) -> SmppConfig:
    base = dict(host="127.0.0.1", port=port, system_id="onewindow", password="secret",
                source_addr="10690001", response_timeout=2.0, connect_timeout=3.0,
                reconnect_first=0.05, reconnect_max=0.5)
    base.update(kw)
    return SmppConfig(**base)  # type: ignore[arg-type]


def notice(text: str = "请A017号到3号窗口办理业务。", ticket: str = "T-17", occurrence: int = 0,
           number: str = NUMBER) -> Notice:
    return Notice(notice_id(ticket, "called", occurrence), ticket, "called",
                  Texts(text, text, "Ticket A017, please go to window 3."),
                  VAULT.seal(parse_phone(number)))


@pytest.fixture
async def gateway():
    async with SmppStandIn() as g:
        yield g


async def test_a_long_chinese_notice_arrives_whole_in_ucs2_parts_with_receipts(gateway):
    receipts: list[Receipt] = []
    assert 134 < len(LONG_ZH) <= 201  # three SMS of 67 UCS-2 characters
    async with SmppChannel(config(gateway.port), VAULT, receipts.append) as sms:
        outcome = await sms.send(notice(LONG_ZH))
        assert isinstance(outcome, Sent)
        await gateway.wait_for(lambda: gateway.receipts_acked == len(outcome.message_ids))
        await gateway.wait_for(lambda: len(receipts) == len(outcome.message_ids))
    assert [(m.dest, m.text) for m in gateway.messages] == [("86" + NUMBER, LONG_ZH)]
    parts = gateway.messages[0].parts
    assert parts == len(outcome.message_ids) == 3
    assert all(s.data_coding == 8 and s.esm_class & 0x40 and len(s.short_message) <= 140
               and s.dest_ton == 1 for s in gateway.submits)
    assert {r.message_id for r in receipts} == set(outcome.message_ids)
    assert {r.state for r in receipts} == {"DELIVRD"}
    assert gateway.unbinds == 1  # closing unbinds


async def test_a_surrogate_pair_is_never_split_and_a_short_notice_is_one_sms(gateway):
    rare = "𠀀𡈽" * 40 + "好"  # characters outside the BMP: 4 octets each in UTF-16
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        assert isinstance(await sms.send(notice(rare, ticket="T-1")), Sent)
        assert isinstance(await sms.send(notice(ticket="T-2")), Sent)
    assert [m.text for m in gateway.messages] == [rare, "请A017号到3号窗口办理业务。"]
    assert gateway.messages[1].parts == 1
    assert not gateway.submits[-1].esm_class & 0x40


async def test_the_phone_number_never_reaches_a_log(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.throttle(1)
    gateway.drop(1, after=1)
    gateway.refuse("8613912345678")
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        sent = await deliver(sms, notice(LONG_ZH), FAST)
        refused = await deliver(sms, notice(ticket="T-9", number="13912345678"), FAST)
    assert isinstance(sent.outcome, Sent) and sent.attempts == 3
    assert isinstance(refused.outcome, Permanent)
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "ESME_RTHROTTLED" in logged and "connection lost" in logged  # it did log
    for clear in (NUMBER, "13912345678", "1381234", "12345678"):
        assert clear not in logged
    assert NUMBER not in repr(notice())


async def test_a_throttled_gateway_is_retried_within_the_bound(gateway):
    gateway.throttle(2)
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        done = await deliver(sms, notice(), FAST)
        assert isinstance(done.outcome, Sent) and done.attempts == 3
        assert [s.status for s in gateway.submits] == [0x58, 0x58, 0]
        gateway.throttle(100)
        given_up = await deliver(sms, notice(ticket="T-18"), FAST)
    assert given_up.outcome == Retryable("ESME_RTHROTTLED")
    assert given_up.attempts == FAST.attempts
    assert len(gateway.submits) == 3 + FAST.attempts  # not one send more than the bound
    assert len(gateway.messages) == 1


async def test_a_dropped_connection_reconnects_and_resends_only_the_missing_parts(gateway):
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        gateway.drop(1)
        first = await deliver(sms, notice(), FAST)
        assert isinstance(first.outcome, Sent) and first.attempts == 2
        gateway.drop(1, after=1)  # the 2nd part of the long one
        second = await deliver(sms, notice(LONG_ZH, ticket="T-18"), FAST)
        assert isinstance(second.outcome, Sent) and second.attempts == 2
    assert gateway.connections == 3 and sms.binds == 3
    assert [m.text for m in gateway.messages] == ["请A017号到3号窗口办理业务。", LONG_ZH]
    # part 1 went once: the retry sent parts 2 and 3 under the same UDH reference
    assert [s.status for s in gateway.submits] == [None, 0, 0, None, 0, 0]


async def test_a_permanent_failure_is_not_retried(gateway):
    gateway.refuse("86" + NUMBER)
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        done = await deliver(sms, notice(), FAST)
    assert done.outcome == Permanent("ESME_RINVDSTADR") and done.attempts == 1
    assert len(gateway.submits) == 1 and gateway.messages == []


async def test_a_recipient_sealed_by_another_centre_is_permanent(gateway):
    stranger = PhoneVault(b"k" * 32, "c2")
    n = Notice("n1:T:called:0", "T", "called", Texts("请", "請", "go"),
               stranger.seal(parse_phone(NUMBER)))
    async with SmppChannel(config(gateway.port), VAULT) as sms:
        done = await deliver(sms, n, FAST)
    assert isinstance(done.outcome, Permanent) and done.attempts == 1
    assert gateway.submits == []


async def test_keepalive_and_a_silent_gateway_is_left_for_a_new_connection(gateway):
    async with SmppChannel(config(gateway.port, enquire_interval=0.05,
                                  response_timeout=0.3), VAULT) as sms:
        await gateway.wait_for(lambda: gateway.enquire_links >= 3)
        await gateway.enquire_clients()  # the gateway's own keepalive is answered
        await gateway.wait_for(lambda: gateway.enquire_answers >= 1)
        assert gateway.connections == 1
        gateway.mute_enquire_link = True
        await gateway.wait_for(lambda: gateway.connections >= 2 and gateway.binds >= 2)
        gateway.mute_enquire_link = False
        assert isinstance(await RetryingChannel(sms, FAST).send(notice()), Sent)


async def test_no_gateway_is_retryable_within_the_connect_timeout():
    with socket.socket() as s:  # bound, not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        async with SmppChannel(config(port, connect_timeout=0.3), VAULT) as sms:
            async with asyncio.timeout(5):
                done = await deliver(sms, notice(), RetryPolicy(attempts=2, first=0.01))
    assert done == type(done)(Retryable("gateway not reachable"), 2)


async def test_a_wrong_password_is_refused_and_retryable(gateway, caplog):
    async with SmppChannel(config(gateway.port, password="wrong", connect_timeout=0.3),
                           VAULT) as sms:
        outcome = await sms.send(notice())
    assert outcome == Retryable("gateway not reachable")
    assert gateway.binds == 0 and gateway.connections >= 1
    assert any("ESME_RINVPASWD" in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)


async def test_an_independent_smpp_implementation_takes_the_channel_s_pdus():
    """Cross-check against smpp34's server (a Rust SMPP 3.4 codec, written apart from both
    the channel and the stand-in): it binds the channel, decodes its UCS-2 parts, and its
    delivery receipt reaches `on_receipt`."""
    import smpp34

    port = quiet_port()
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="SMSC")
    await server.start()
    parts: dict[int, bytes] = {}
    receipts: list[Receipt] = []
    got_receipt = asyncio.Event()

    def on_receipt(r: Receipt) -> None:
        receipts.append(r)
        got_receipt.set()

    async def smsc() -> None:
        esme = None
        while True:
            ev = await server.next()
            if isinstance(ev, smpp34.Esme):
                esme = ev
            elif isinstance(ev, smpp34.SubmitSmEvent):
                assert ev.data_coding == 8 and ev.esm_class == 0x40
                assert ev.destination_addr == "86" + NUMBER
                udh_, body = ev.short_message[:6], ev.short_message[6:]
                assert udh_[:3] == b"\x05\x00\x03" and udh_[4] == 3
                parts[udh_[5]] = body
                ev.accept(message_id=f"rs{udh_[5]}")
                if len(parts) == 3 and esme is not None:
                    await esme.deliver_sm(ev.source_addr, b"id:rs3 sub:001 dlvrd:001 "
                                          b"stat:DELIVRD err:000 text:", esm_class=0x04)

    task = asyncio.create_task(smsc())
    try:
        async with SmppChannel(config(port), VAULT, on_receipt) as sms:
            outcome = await sms.send(notice(LONG_ZH))
            async with asyncio.timeout(5):
                await got_receipt.wait()
    finally:
        task.cancel()
        await server.stop()
    assert outcome == Sent(("rs1", "rs2", "rs3"))
    assert b"".join(parts[k] for k in (1, 2, 3)).decode("utf-16-be") == LONG_ZH
    assert receipts == [Receipt("rs3", "DELIVRD")]
