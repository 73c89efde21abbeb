# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# owmqtt.py - OneWindow's own MQTT 3.1.1 client for MicroPython asyncio.
#
# Design goals (learned from the failure modes of older MicroPython clients):
# * Never block the event loop: all socket I/O goes through asyncio streams,
#   and a supervisor (the "keeper") enforces keepalive deadlines, so a
#   half-open TCP connection on flaky Wi-Fi is detected and dropped.
# * Reconnect with exponential backoff and *full jitter* (delay drawn from
#   [0, backoff]) so a fleet of boards does not stampede a restarted broker.
# * The receive task can never die silently: every exception (MemoryError,
#   malformed packet, socket error) is printed, counted and turned into a
#   clean reconnect.
# * Bounded memory: bounded inbound queue (oldest dropped), bounded number of
#   QoS 1 messages in flight, inbound payloads above max_payload are skipped
#   in small chunks or the connection is dropped - never read into RAM whole.
# * A heap that stays in one piece: on a board the heap fragments long before it
#   runs out (a TLS handshake needs one free block of ~16 KB). Every inbound packet
#   is read into one buffer allocated with the client (at boot) and reused; a
#   delivered payload is copied out once, at its exact size, and an outbound
#   packet is built in one allocation of its exact size.
# * QoS 1 publishes survive reconnects (resent with DUP), and inbound DUP
#   redeliveries of messages we already acknowledged are suppressed, so the
#   application does not need its own dedupe for the common lost-PUBACK case.
#
# MicroPython only (uses const, ticks_ms, asyncio.wait_for_ms).
#
# Why one module of 758 lines: it is one client, one state machine (keeper -> session -> reader)
# over one shared state (the in-flight table, the receive buffer, the socket lock, the
# up/down/fail events), read top to bottom; the packet builders are a few helpers only it calls.
# On a board each module is one more module object and globals dict in RAM (all of it in RAM
# when loaded from /app after an over-the-air update), and one more entry in
# firmware/manifest.py.

import asyncio
import gc
import time

from micropython import const

try:
    from os import urandom as _urandom
except ImportError:  # some ports lack os.urandom; ticks still give entropy
    _urandom = None  # type: ignore[assignment]

# Packet types (high nibble of the fixed header).
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)  # includes mandatory reserved flags 0b0010
_SUBACK = const(0x90)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

_MAX_INFLIGHT = const(4)  # outbound QoS 1 messages awaiting PUBACK
_TOPIC_MAX = const(256)  # longest inbound topic we accept
_ACKED_RING = const(8)  # remembered inbound QoS 1 packet ids (DUP suppression)
_SKIP_CHUNK = const(64)  # buffer used to discard oversize payloads
_STABLE_MS = const(10000)  # a link up this long counts as healthy (backoff reset)

_CONNACK_ERR = {
    1: "bad protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}

DEFAULTS = {
    "server": "127.0.0.1",
    "port": 1883,
    "client_id": "ow",
    "user": None,
    "password": None,
    "keepalive": 30,  # seconds
    "clean": False,  # persistent session: broker queues QoS 1 while we are away
    "will": None,  # (topic, msg_bytes, retain, qos)
    "max_payload": 4096,
    # Oversize payloads up to this size are skipped in-stream (and PUBACKed, so
    # a persistent session does not redeliver them forever); anything larger
    # drops the connection without reading it.
    "max_discard": 16384,
    "queue_len": 8,
    "backoff_min": 0.5,
    "backoff_max": 30,
    "connect_timeout": 5,
    # TLS: an ssl.SSLContext (see tls_context), or None for plain MQTT.
    "ssl": None,
}


class MQTTError(Exception):
    pass


def _no_delay(w):
    # Nagle holds a small packet until the last one is acknowledged: a PUBACK followed by an
    # ack, or an OTA chunk request, then waits for the broker's delayed ACK (~40 ms each).
    # Ports without the option keep Nagle. A TLS socket has no setsockopt: it is set on the
    # TCP socket before the handshake (`_session`).
    try:
        w.s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    except (AttributeError, OSError, TypeError):
        pass


def tls_context(ca):
    """An SSLContext that trusts only `ca` (the centre's CA certificate, PEM text or DER
    bytes) and checks the broker's certificate against it. mbedtls on the boards parses
    DER, so PEM is decoded here. Boards built without ssl get a clear error, not a silent
    plain connection."""
    try:
        # MicroPython's built-in module (1.23+); `ssl` is micropython-lib's wrapper of it,
        # frozen on most ports but not all, and one module less in RAM.
        import tls as ssl
    except ImportError:
        try:
            import ssl
        except ImportError:
            raise MQTTError("this firmware has no ssl module: TLS is not possible on this board")
    if not ca:
        raise MQTTError("TLS needs the centre's CA certificate (broker.ca in ow.json)")
    if isinstance(ca, str):
        import binascii

        body = "".join(ln.strip() for ln in ca.split("\n") if not ln.startswith("-----"))
        ca = binascii.a2b_base64(body)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if ssl.__name__ == "tls":
        ctx.load_verify_locations(ca)  # the built-in takes the DER bytes, positionally
    else:
        ctx.load_verify_locations(cadata=ca)
    return ctx


def _log(*a):
    print("owmqtt:", *a)


class _Jitter:
    # Tiny private xorshift32 PRNG: seeded per board from urandom, the client
    # id and the clock, so identical firmware images booted at the same moment
    # still draw different reconnect delays, and the app's `random` state is
    # left alone.
    def __init__(self, salt):
        s = time.ticks_us() ^ (hash(salt) << 8)
        if _urandom is not None:
            s ^= int.from_bytes(_urandom(4), "little")
        self.s = (s & 0xFFFFFFFF) or 0x1234567

    def rand(self):  # uniform float in [0, 1)
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s / 4294967296


def _put_str(buf, s):
    if isinstance(s, str):
        s = s.encode()
    n = len(s)
    buf.append(n >> 8)
    buf.append(n & 0xFF)
    buf.extend(s)


def _put_len(buf, n):
    # MQTT variable-length "remaining length" encoding (max 4 bytes).
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            buf.append(b | 0x80)
        else:
            buf.append(b)
            return


def _packet(first, body):
    p = bytearray((first,))
    _put_len(p, len(body))
    p.extend(body)
    return p


def _publish_packet(first, topic, pid, msg):
    """A QoS 1 PUBLISH in one allocation of its exact size (it is kept until PUBACK):
    no growing buffer, no second copy."""
    if isinstance(topic, str):
        topic = topic.encode()
    t, m = len(topic), len(msg)
    n = 2 + t + 2 + m
    h = 2 if n < 128 else 3 if n < 16384 else 4 if n < 2097152 else 5
    p = bytearray(h + n)
    p[0] = first
    i = 1
    while True:  # remaining length, as _put_len
        b = n & 0x7F
        n >>= 7
        p[i] = b | 0x80 if n else b
        i += 1
        if not n:
            break
    p[i] = t >> 8
    p[i + 1] = t & 0xFF
    i += 2
    p[i : i + t] = topic
    i += t
    p[i] = pid >> 8
    p[i + 1] = pid & 0xFF
    p[i + 2 :] = msg
    return p


class _Messages:
    # Async iterator over the inbound queue. MicroPython has no async
    # generators, hence a class with __anext__.
    def __init__(self, c):
        self._c = c

    def __aiter__(self):
        return self

    async def __anext__(self):
        c = self._c
        while not c._q:
            if c._stop.is_set():
                raise StopAsyncIteration
            c._q_evt.clear()
            await c._q_evt.wait()
        return c._q.pop(0)


class MQTTClient:
    def __init__(self, config=None):
        cfg = dict(DEFAULTS)
        if config:
            cfg.update(config)
        self.cfg = cfg
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self.down.set()
        self.on_connect = None  # optional coroutine function, called as f(client)
        self.stats = {
            "connects": 0,
            "drops": 0,
            "dropped_msgs": 0,
            "oversize": 0,
            "errors": 0,
            "refused": 0,
        }
        self._jit = _Jitter(cfg["client_id"])
        self._subs = {}  # topic -> qos; replayed after every reconnect
        self._inflight = {}  # pid -> [packet bytearray, done Event, session]
        self._slot = asyncio.Event()  # set when an in-flight slot frees up
        self._subacks = {}  # pid -> [Event, return codes or None]
        self._acked = [0] * _ACKED_RING
        self._acked_i = 0
        self._pid = 0
        self._q = []
        self._q_evt = asyncio.Event()
        self._stop = asyncio.Event()
        self._fail = asyncio.Event()  # set by anyone who sees the link die
        self._lock = asyncio.Lock()  # serialises writes on the socket
        self._r = None
        self._w = None
        self._sess = 0  # incremented on every successful connect
        self._keeper = None
        self._reader_task = None
        self._last_rx = 0
        self._last_tx = 0
        self._ping_out = False
        # The receive buffer (topic + payload of the largest accepted PUBLISH, or a
        # SUBACK) and the PUBACK packet: allocated once, reused for every packet.
        self._rx = bytearray(cfg["max_payload"] + _TOPIC_MAX)
        self._rxv = memoryview(self._rx)
        self._ack = bytearray((_PUBACK, 2, 0, 0))  # a queued write is copied (Stream.write)

    # ------------------------------------------------------------- public API

    async def connect(self, timeout=None):
        """Start the keeper task (once) and return when first connected.
        With a timeout (s), raise asyncio.TimeoutError if not up by then;
        the keeper keeps trying in the background either way."""
        if self._keeper is None:
            self._stop.clear()
            self._keeper = asyncio.create_task(self._keep())
        if timeout is None:
            await self.up.wait()
        else:
            await asyncio.wait_for_ms(self.up.wait(), int(timeout * 1000))

    def messages(self):
        return _Messages(self)

    def subscribe_on_connect(self, topic, qos=1):
        """Subscribe to topic on every (re)connect, before on_connect runs (the birth).
        Not now: if the link is up already, call subscribe() too."""
        self._subs[topic] = qos

    async def subscribe(self, topic, qos=1):
        """Remember topic (replayed on reconnect); if up, subscribe now.
        Returns the granted qos, or None if not confirmed right now (it
        will be retried on the next reconnect)."""
        self._subs[topic] = qos
        if not self.up.is_set():
            return None
        try:
            codes = await self._do_subscribe(((topic, qos),))
            return codes[0]
        except Exception as e:  # link trouble: the keeper resubscribes later
            _log("subscribe", topic, repr(e))
            return None

    async def publish(self, topic, msg, retain=False, qos=1):
        if isinstance(msg, str):
            msg = msg.encode()
        if qos == 0:
            # At most once: wait for a link, send once, no retries.
            await self.up.wait()
            pkt = bytearray()
            _put_str(pkt, topic)
            pkt.extend(msg)
            try:
                await self._send(_packet(_PUBLISH | (1 if retain else 0), pkt))
            except Exception:
                pass
            return
        if qos != 1:
            raise ValueError("qos")
        # Bounded in-flight window: memory for retransmission is capped.
        while len(self._inflight) >= _MAX_INFLIGHT:
            if self._stop.is_set():
                raise MQTTError("closed")
            self._slot.clear()
            await self._slot.wait()
        pid = self._next_pid()
        pkt = _publish_packet(_PUBLISH | 0x02 | (1 if retain else 0), topic, pid, msg)
        done = asyncio.Event()
        ent = [pkt, done, -1]
        self._inflight[pid] = ent
        await self._send_inflight(ent)
        await done.wait()
        if ent[2] == -2:  # released by disconnect(), never acknowledged
            raise MQTTError("closed")

    async def disconnect(self):
        """Clean DISCONNECT (broker discards the will) and stop all tasks."""
        self._stop.set()
        # Any open link, even one still being set up (e.g. the broker already
        # redelivered a message before our SUBACK), gets a DISCONNECT.
        if self._w is not None:
            try:
                await self._send(b"\xe0\x00")
            except Exception:
                pass
        self._fail.set()
        k = self._keeper
        if k is not None:
            try:
                await k
            except BaseException:
                pass
        self._keeper = None
        # Release anybody still waiting so the app can shut down.
        for ent in self._inflight.values():
            ent[2] = -2
            ent[1].set()
        self._slot.set()
        self._q_evt.set()

    # ----------------------------------------------------------- helpers

    def backoff_delay(self, attempt):
        """Full-jitter delay (s) for the given failed-attempt count."""
        cap = self.cfg["backoff_min"] * (1 << min(attempt, 16))
        if cap > self.cfg["backoff_max"]:
            cap = self.cfg["backoff_max"]
        return self._jit.rand() * cap

    def _next_pid(self):
        while True:
            self._pid = (self._pid % 65535) + 1
            p = self._pid
            if p not in self._inflight and p not in self._subacks:
                return p

    async def _send(self, buf):
        w = self._w
        if w is None:
            raise OSError("not connected")
        async with self._lock:
            if w is not self._w:
                raise OSError("link changed")
            try:
                w.write(buf)
                # A stuck send (full TCP window on a dead link) must not hang
                # the caller forever.
                await asyncio.wait_for_ms(w.drain(), self.cfg["connect_timeout"] * 1000)
                self._last_tx = time.ticks_ms()
            except Exception as e:
                self._drop("send: " + repr(e))
                raise

    async def _send_inflight(self, ent):
        # Send a QoS 1 publish at most once per session; retransmissions
        # (new session) carry DUP.
        if self._w is None or ent[2] == self._sess or ent[2] == -2:
            return
        if ent[2] != -1:
            ent[0][0] |= 0x08
        ent[2] = self._sess
        try:
            await self._send(ent[0])
        except Exception:
            ent[2] = -1  # not sent in this session; the keeper resends later
            ent[0][0] |= 0x08

    def _drop(self, reason):
        if not self._fail.is_set():
            if not self._stop.is_set():
                _log("link lost:", reason)
            self._fail.set()
            # A SUBACK can no longer arrive on this link: release waiters now
            # rather than letting them sit out their timeout.
            for ent in self._subacks.values():
                ent[1] = None
                ent[0].set()

    async def _do_subscribe(self, items):
        pid = self._next_pid()
        body = bytearray((pid >> 8, pid & 0xFF))
        for t, q in items:
            _put_str(body, t)
            body.append(q)
        ent = [asyncio.Event(), None]
        self._subacks[pid] = ent
        try:
            await self._send(_packet(_SUBSCRIBE, body))
            await asyncio.wait_for_ms(ent[0].wait(), self.cfg["connect_timeout"] * 1000)
        finally:
            self._subacks.pop(pid, None)
        codes = ent[1]
        if codes is None:
            raise OSError("link lost before SUBACK")
        for i, c in enumerate(codes):
            if c == 0x80:
                self.stats["errors"] += 1
                _log("subscribe refused:", items[i][0] if i < len(items) else "?")
        return codes

    # ------------------------------------------------------------ the keeper

    async def _keep(self):
        attempt = 0
        while not self._stop.is_set():
            ok = False
            t0 = time.ticks_ms()
            try:
                ok = await self._session()
            except Exception as e:  # never let the keeper die
                self.stats["errors"] += 1
                _log("keeper:", repr(e))
            await self._teardown()
            if self._stop.is_set():
                break
            # Only a session that was established *and* stayed up a while
            # resets the backoff; refused, failed or flapping links (e.g. a
            # broker that accepts then kicks us) keep growing it.
            if ok and time.ticks_diff(time.ticks_ms(), t0) > _STABLE_MS:
                attempt = 0
            else:
                attempt += 1
            d = self.backoff_delay(attempt)
            try:
                await asyncio.wait_for_ms(self._stop.wait(), int(d * 1000))
            except asyncio.TimeoutError:
                pass
        self._q_evt.set()

    async def _session(self):
        """One connection lifetime. Returns True if it was established."""
        cfg = self.cfg
        tmo = cfg["connect_timeout"] * 1000
        self._fail.clear()
        opening = asyncio.open_connection(cfg["server"], cfg["port"])
        self._r, self._w = await asyncio.wait_for_ms(opening, tmo)
        _no_delay(self._w)  # on the TCP socket: a TLS one has no setsockopt
        if cfg["ssl"] is not None:  # the handshake happens in the first drain, in its timeout
            s = cfg["ssl"].wrap_socket(
                self._w.s, server_hostname=cfg["server"], do_handshake_on_connect=False
            )
            s.setblocking(False)
            self._r = self._w = asyncio.StreamWriter(s, {})
        self._last_rx = self._last_tx = time.ticks_ms()
        self._ping_out = False
        w = self._w
        w.write(self._connect_packet())
        await asyncio.wait_for_ms(w.drain(), tmo)
        hdr = await asyncio.wait_for_ms(self._r.readexactly(4), tmo)
        if hdr[0] != _CONNACK or hdr[1] != 2:
            raise MQTTError("bad CONNACK")
        rc = hdr[3]
        if rc:
            # Bad credentials etc: count and retry with backoff, never crash.
            self.stats["refused"] += 1
            self.stats["errors"] += 1
            _log("CONNACK refused:", _CONNACK_ERR.get(rc, rc))
            return False
        self._sess += 1
        self.stats["connects"] += 1
        self._reader_task = asyncio.create_task(self._reader())
        # Replay subscriptions every time: the broker may have lost our
        # session (restart without persistence), and it is cheap.
        if self._subs:
            await self._do_subscribe(list(self._subs.items()))
        # Retransmit unacknowledged QoS 1 publishes, oldest pid first.
        for pid in sorted(self._inflight):
            ent = self._inflight.get(pid)
            if ent:
                await self._send_inflight(ent)
        if self._fail.is_set():
            return False
        self.down.clear()
        self.up.set()
        self._slot.set()
        if self.on_connect:
            # Separate task: a callback that publishes QoS 1 must not block
            # the keeper (which is what would recover the link for it).
            asyncio.create_task(self._run_cb())
        ka = cfg["keepalive"] * 1000
        tick = min(1000, ka // 4) if ka else 1000
        while not self._fail.is_set():
            try:
                await asyncio.wait_for_ms(self._fail.wait(), tick)
                break
            except asyncio.TimeoutError:
                pass
            if not ka:
                continue
            now = time.ticks_ms()
            idle_rx = time.ticks_diff(now, self._last_rx)
            if idle_rx > ka:
                self._drop("keepalive: nothing received for %d ms" % idle_rx)
                break
            idle_tx = time.ticks_diff(now, self._last_tx)
            if (idle_tx >= ka // 2 or idle_rx >= ka // 2) and not self._ping_out:
                self._ping_out = True
                try:
                    await self._send(b"\xc0\x00")
                except Exception:
                    break
        return True

    async def _run_cb(self):
        try:
            await self.on_connect(self)
        except Exception as e:
            self.stats["errors"] += 1
            _log("on_connect:", repr(e))

    async def _teardown(self):
        was_up = self.up.is_set()
        self.up.clear()
        self.down.set()
        if was_up:
            self.stats["drops"] += 1
        t = self._reader_task
        self._reader_task = None
        if t is not None:
            t.cancel()
            try:
                await t
            except BaseException:
                pass
        w = self._w
        self._r = self._w = None
        if w is not None:
            try:
                w.close()
                await w.wait_closed()
            except Exception:
                pass
        # Wake subscribe() waiters; their SUBACK will never come on this link.
        for ent in self._subacks.values():
            ent[1] = None
            ent[0].set()
        gc.collect()

    def _connect_packet(self):
        cfg = self.cfg
        flags = 0x02 if cfg["clean"] else 0
        will = cfg["will"]
        if will:
            flags |= 0x04 | ((will[3] & 3) << 3) | (0x20 if will[2] else 0)
        if cfg["user"] is not None:
            flags |= 0x80
            if cfg["password"] is not None:
                flags |= 0x40
        ka = cfg["keepalive"]
        body = bytearray(b"\x00\x04MQTT\x04")
        body.append(flags)
        body.append(ka >> 8)
        body.append(ka & 0xFF)
        _put_str(body, cfg["client_id"])
        if will:
            _put_str(body, will[0])
            _put_str(body, will[1])
        if flags & 0x80:
            _put_str(body, cfg["user"])
            if flags & 0x40:
                _put_str(body, cfg["password"])
        return _packet(_CONNECT, body)

    # ------------------------------------------------------------ the reader

    async def _reader(self):
        try:
            while True:
                await self._read_packet()
        except asyncio.CancelledError:
            raise
        except MemoryError:
            # Free what we can before reconnecting; do not die silently.
            gc.collect()
            self.stats["errors"] += 1
            self._drop("MemoryError in reader")
        except Exception as e:
            self.stats["errors"] += 1
            self._drop("reader: " + repr(e))

    async def _fill(self, n, off=0):
        """Read exactly n bytes into the receive buffer at off; returns off + n."""
        r, mv, end = self._r, self._rxv, off + n
        while off < end:
            k = await r.readinto(mv[off:end])
            if k == 0:
                raise EOFError
            if k:  # None: a TLS socket had no application data yet
                off += k
        return end

    async def _byte(self):
        await self._fill(1)
        return self._rx[0]

    async def _read_packet(self):
        first = await self._byte()
        self._last_rx = time.ticks_ms()
        # Decode remaining length; more than 4 bytes is a protocol violation.
        n = 0
        shift = 0
        while True:
            d = await self._byte()
            n |= (d & 0x7F) << shift
            if not d & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("bad remaining length")
        t = first & 0xF0
        if t == _PUBLISH:
            await self._read_publish(first, n)
            return
        if t in (_PUBACK, _UNSUBACK, _PINGRESP):
            want = 0 if t == _PINGRESP else 2
            if n != want or first & 0x0F:
                raise MQTTError("bad packet %02x len %d" % (first, n))
            if t == _PINGRESP:
                self._ping_out = False
                return
            await self._fill(2)
            v = self._rx
            if t == _PUBACK:
                ent = self._inflight.pop((v[0] << 8) | v[1], None)
                if ent is not None:
                    ent[1].set()
                    self._slot.set()
            return
        if t == _SUBACK:
            if n < 3 or n > 64:
                raise MQTTError("bad SUBACK len %d" % n)
            await self._fill(n)
            v = self._rx
            ent = self._subacks.get((v[0] << 8) | v[1])
            if ent is not None:
                ent[1] = bytes(self._rxv[2:n])
                ent[0].set()
            return
        raise MQTTError("unexpected packet type %02x" % first)

    async def _read_publish(self, first, n):
        qos = (first >> 1) & 3
        if qos > 1:  # we never subscribe with QoS 2
            raise MQTTError("unsupported qos %d" % qos)
        if n < 2:
            raise MQTTError("short PUBLISH")
        v = self._rx
        await self._fill(2)
        tlen = (v[0] << 8) | v[1]
        hdr = tlen + 2 + (2 if qos else 0)
        if tlen > _TOPIC_MAX or hdr > n:
            raise MQTTError("bad topic length %d" % tlen)
        # The topic sits at the buffer's start, the packet id after it (read over the
        # length bytes' place would shift it), then the payload.
        await self._fill(tlen)
        pid = 0
        if qos:
            await self._fill(2, tlen)
            pid = (v[tlen] << 8) | v[tlen + 1]
        plen = n - hdr
        if plen > self.cfg["max_payload"]:
            self.stats["oversize"] += 1
            if plen > self.cfg["max_discard"]:
                # Too big even to skip: drop the link without reading it.
                raise MQTTError("oversize payload %d, reconnecting" % plen)
            # Skip in small chunks so RAM use stays at _SKIP_CHUNK bytes,
            # then acknowledge so a persistent session does not redeliver it.
            _log("oversize payload %d on %s discarded" % (plen, bytes(self._rxv[:tlen])))
            while plen:  # in the buffer, after the topic
                k = _SKIP_CHUNK if plen > _SKIP_CHUNK else plen
                await self._fill(k, tlen)
                plen -= k
            if qos:
                await self._puback(pid)
            return
        await self._fill(plen, tlen)
        if qos:
            # DUP redelivery of something we already acknowledged (our PUBACK
            # was lost in an outage): ack again but do not deliver twice.
            if first & 0x08 and pid in self._acked:
                await self._puback(pid)
                return
        mv = self._rxv
        # The queue keeps messages past the next read: copies, each of its exact size.
        self._enqueue(str(mv[:tlen], "utf-8"), bytes(mv[tlen : tlen + plen]), bool(first & 1))
        if qos:
            self._acked[self._acked_i] = pid
            self._acked_i = (self._acked_i + 1) % _ACKED_RING
            await self._puback(pid)

    async def _puback(self, pid):
        a = self._ack
        a[2] = pid >> 8
        a[3] = pid & 0xFF
        await self._send(a)

    def _enqueue(self, topic, payload, retained):
        q = self._q
        if len(q) >= self.cfg["queue_len"]:
            q.pop(0)  # oldest loses: fresh state matters most on a display
            self.stats["dropped_msgs"] += 1
        q.append((topic, payload, retained))
        self._q_evt.set()
