# OneWindow MQTT protocol v1, the device side: what every device does on its link to the hub
# (protocol/README.md, 4.8). One module for the boards' runtime (firmware/ow/runtime.py,
# MicroPython), the Pi node (node/link.py) and the simulated device most hub tests
# use (tools/simdevice.py); vectors/device.json holds its golden behaviour, run on both
# interpreters.
#
# Pure: no I/O, no clock, no event loop. Each input takes `now` (milliseconds on the
# caller's counter: time.ticks_ms() on a board, with its ticks_diff passed in; a monotonic
# clock elsewhere) and returns actions, tuples the caller carries out in order:
#   (PUB, topic, payload, retain)   publish at QoS 1
#   (SUB, topic)                    subscribe at QoS 1 (before the birth that follows)
#   (SEND, seq, payload)            publish the event on t_evt; call puback(seq, now) after
#   (REPLY, seq, kind, msg)         the hub answered event seq: kind is RES or ERR
#   (LATE, kind, msg)               an answer nobody waits for (given up, or a repeat)
#   (EXPIRED, seq)                  no answer to event seq within its timeout: given up
#   (ERROR, msg)                    every `err` received, for the log
#   (RUN, msg, received)            apply this command now, then call done(id, ok, code)
#   (APPLIED, msg)                  a command the device applied itself (rebirth)
#   (REFUSED, msg, code)            a command refused without running it (acked already)
#   (HUB, state)                    the hub's retained status: its state, None if cleared
# Storage is passed in: `save(mark)` for the seq high-water mark, Book.save for the box.
# Same syntax rules as ow_protocol.py; every name here costs RAM on a board.

try:  # CPython: the package; a board: top-level modules (ImportError costs once, at boot)
    from onewindow.protocol import ow_protocol as P  # type: ignore[import-not-found]
except ImportError:
    import ow_protocol as P

# Topic leaves of dev/{dev}/... (protocol/README.md, 2)
STATUS = "status"
EVT = "evt"
ACK = "ack"
CMD = "cmd"
RES = "res"
ERR = "err"
OTA = "ota"
OTAREQ = "otareq"
HUB = "hub"  # the hub's own status topic (also a message kind)

PUB = "pub"
SUB = "sub"
SEND = "send"
REPLY = "reply"
LATE = "late"
EXPIRED = "expired"
ERROR = "error"
RUN = "run"
APPLIED = "applied"
REFUSED = "refused"

SERVED_OFFLINE = "served_offline"
UNSUPPORTED = "unsupported"

SEQ_STEP = 32  # events per write of the seq high-water mark (flash and SD cards wear)
RETRY_MS = 1500  # resend an unanswered event (same bytes, same seq) this long after its PUBACK
TIMEOUT_MS = 5000  # an event's default wait for its answer
RECENT = 16  # command ids remembered for at-most-once (a board's default)
SERVED_KEEP = 16  # take seqs served offline remembered (late prints come soon)


def _minus(a, b):
    return a - b


def expired(msg, waited_ms):
    """Has a command's ttl (seconds from receipt) run out after waiting waited_ms?"""
    return waited_ms > msg["ttl"] * 1000


class Device:
    """One device's protocol state: seq, events waiting for answers, recent commands, the
    hub's clock and state, the birth. `seq`: the last seq used, or the stored mark after a
    reboot; `save(mark)` stores a new mark before any seq above the old one is used."""

    def __init__(self, centre, dev, role, now, seq=0, save=None, fw="", board="",
                 window=None, ticks_diff=None, retry_ms=RETRY_MS, recent=RECENT):
        self.dev = dev
        self.role = role
        self.fw = fw
        self.board = board
        self.window = window
        self.seq = seq
        self.reserved = seq
        self.alerts = []
        self.sys_alerts = []  # a runtime's own (ota_rollback), kept apart from the app's
        self.extra = {}  # further birth fields (e.g. "ota")
        self.hub_ready = False
        self.hub_clock = None  # (hub epoch s, now when received)
        self.book = None  # a box's offline Book: its served seqs refuse late prints
        self.runs = []  # command types the caller applies (RUN); others are unsupported
        self.retry_ms = retry_ms
        self._save = save
        self._diff = ticks_diff or _minus
        self._keep = recent
        self._t0 = now
        self._pending = {}  # seq -> [payload, sent at, timeout ms, PUBACK at or None, retry]
        self._recent = []  # (id, ok, code) of the last commands, oldest first
        self.t_status = P.device_topic(centre, dev, STATUS)
        self.t_evt = P.device_topic(centre, dev, EVT)
        self.t_ack = P.device_topic(centre, dev, ACK)
        # What the device subscribes to before every birth (in this order: a list, since a
        # board's dicts keep no order), and the kind of message each carries.
        self.subs = [P.device_topic(centre, dev, CMD), P.device_topic(centre, dev, RES),
                     P.device_topic(centre, dev, ERR), P.hub_topic(centre)]
        self.inbound = {self.subs[0]: CMD, self.subs[1]: RES, self.subs[2]: ERR,
                        self.subs[3]: HUB}

    # ---- seq (protocol 4.2) -------------------------------------------------------------
    def next_seq(self):
        self.seq += 1
        if self.seq > self.reserved:
            self._reserve(self.seq + SEQ_STEP - 1)
        return self.seq

    def bump(self, last):
        """The hub has seen up to `last` (seq_behind, e.g. after a reflash): continue above."""
        if last > self.seq:
            self.seq = last
            if last > self.reserved:
                self._reserve(last + SEQ_STEP)

    def _reserve(self, mark):
        if self._save is not None:
            self._save(mark)
        self.reserved = mark

    # ---- birth and will (protocol 4.1) --------------------------------------------------
    def will(self):
        """(topic, payload) of the last will, retained, QoS 1."""
        return self.t_status, P.encode(STATUS, {"dev": self.dev, "state": "lost"})

    def status(self, state, now, **extra):
        msg = {"dev": self.dev, "state": state, "role": self.role, "fw": self.fw,
               "board": self.board, "seq": self.seq,
               "alerts": self.alerts + self.sys_alerts if self.sys_alerts else self.alerts,
               "uptime": self._diff(now, self._t0) // 1000}
        if self.window is not None:
            msg["window"] = self.window
        msg.update(self.extra)
        msg.update(extra)
        return (PUB, self.t_status, P.encode(STATUS, msg), True)

    def birth(self, now):
        return self.status("ready", now)

    def connect(self, now):
        """The link is up (again): subscribe, then the birth."""
        out = [(SUB, t) for t in self.subs]
        out.append(self.birth(now))
        return out

    def set_alerts(self, alerts, now):
        """Alerts ride in the retained birth: a new birth when they change (publish it if
        the link is up; the next connect's birth carries them anyway)."""
        if alerts == self.alerts:
            return []
        self.alerts = alerts
        return [self.birth(now)]

    # ---- events -------------------------------------------------------------------------
    def event(self, typ, now, timeout_ms=TIMEOUT_MS, seq=None, retry_ms=0, **fields):
        """A new event; `seq`: one taken with next_seq() beforehand, for a caller that
        must know which event a late answer belongs to (the box's offline fallback)."""
        if seq is None:
            seq = self.next_seq()
        return self.send(seq, P.encode(EVT, P.event(self.dev, seq, typ, **fields)), now,
                         timeout_ms, retry_ms)

    def send(self, seq, payload, now, timeout_ms=TIMEOUT_MS, retry_ms=0):
        """Send these event bytes and keep them until an answer with their seq arrives: each
        PUBACK without an answer after retry ms, the same bytes again (the hub answers a
        repeat with its first answer), until timeout ms after now."""
        if seq > self.seq:
            self.seq = seq
        self._pending[seq] = [payload, now, timeout_ms, None, retry_ms or self.retry_ms]
        return [(SEND, seq, payload)]

    def puback(self, seq, now):
        """The broker has event seq: the retry clock starts."""
        p = self._pending.get(seq)
        if p is not None:
            p[3] = now

    def tick(self, now, seq=None):
        """Time passes: resend what is due, give up what is past its timeout (all events,
        or only `seq`)."""
        out = []
        for s in sorted(self._pending) if seq is None else (seq,):
            p = self._pending.get(s)
            if p is None:
                continue
            if self._diff(now, p[1]) >= p[2]:
                del self._pending[s]
                out.append((EXPIRED, s))
            elif p[3] is not None and self._diff(now, p[3]) >= p[4]:
                p[3] = None
                out.append((SEND, s, p[0]))
        return out

    def wait_ms(self, now, seq=None):
        """Milliseconds until tick() has something to do (for `seq`, or any event); None
        when nothing waits."""
        best = None
        for s in self._pending if seq is None else (seq,):
            p = self._pending.get(s)
            if p is None:
                continue
            w = p[2] - self._diff(now, p[1])
            if p[3] is not None:
                r = p[4] - self._diff(now, p[3])
                if r < w:
                    w = r
            if best is None or w < best:
                best = w
        return None if best is None else max(0, best)

    def drop(self, seq):
        """Stop waiting for seq (its caller went away)."""
        self._pending.pop(seq, None)

    # ---- inbound ------------------------------------------------------------------------
    def message(self, topic, payload, now):
        """A message on one of self.subs -> actions; None for any other topic (an app's).
        ProtocolError for a payload that breaks the contract (log it and drop it)."""
        kind = self.inbound.get(topic)
        if kind is None:
            return None
        if kind == HUB:
            if not payload:  # the retained status cleared
                self.hub_ready = False
                return [(HUB, None)]
            state = P.decode(HUB, payload)["state"]
            self.hub_ready = state == "ready"
            return [(HUB, state)]
        msg = P.decode(kind, payload)
        if kind == CMD:
            return self._command(msg, now)
        out = []
        if kind == ERR:
            out.append((ERROR, msg))
            if msg["code"] == "seq_behind" and "last" in msg:
                self.bump(msg["last"])
        seq = msg.get("seq")
        if seq is not None:
            if self._pending.pop(seq, None) is not None:
                out.append((REPLY, seq, kind, msg))
            else:
                out.append((LATE, kind, msg))
        return out

    def _command(self, msg, now):
        cid = msg["id"]
        for r in self._recent:
            if r[0] == cid:  # QoS 1 redelivery or a hub repeat: the same ack, not run again
                return [self._ack(cid, r[1], r[2])]
        typ = msg["type"]
        book = self.book
        if typ == "print" and book is not None and msg.get("seq") in book.served:
            # The hub's late answer to a press served offline: one press, one ticket.
            return [(REFUSED, msg, SERVED_OFFLINE)] + self.done(cid, False, SERVED_OFFLINE)
        if typ == "rebirth":
            out = [self.birth(now)]
            out += self.done(cid, True)
            out.append((APPLIED, msg))
            return out
        if typ not in self.runs:
            return [self._ack(cid, False, UNSUPPORTED)]
        if "ts" in msg:
            self.hub_clock = (msg["ts"], now)
        return [(RUN, msg, now)]

    def done(self, cid, ok, code=None):
        """The caller applied (or refused) command cid: ack it, and ack a duplicate alike."""
        self._recent.append((cid, ok, code))
        if len(self._recent) > self._keep:
            self._recent.pop(0)
        return [self._ack(cid, ok, code)]

    def _ack(self, cid, ok, code):
        msg = {"dev": self.dev, "id": cid, "ok": ok}
        if code:
            msg["code"] = code
        return (PUB, self.t_ack, P.encode(ACK, msg), False)

    def clock(self, now):
        """Epoch seconds by the hub's clock carried forward (boards have no RTC); None
        before any command brought a `ts`."""
        hc = self.hub_clock
        if hc is None:
            return None
        return hc[0] + self._diff(now, hc[1]) / 1000


class Book:
    """A button box's offline numbers (protocol 4.7): the hub's blocks, the next-number
    pointers, the tickets printed offline and not yet joined, the take seqs they served.
    save() is the caller's storage (a subclass writes state() to flash): it runs before a
    number is returned, so a reboot never reissues one nor forgets what was served."""

    def __init__(self, state=None):
        self.day = ""
        self.blocks = {}  # prefix -> [[first, last], ...]
        self.next = {}  # prefix -> next number to issue
        # [number, item, taken_at, for_seq or None, priority class or None], oldest first
        # (a book written before priority classes holds 3 or 4 of these)
        self.pending = []
        self.served = []  # take seqs served offline: the hub's late prints are refused
        self.head = ""  # base64 ESC/POS top of an offline ticket, from the hub
        if state:
            self.day, self.blocks, self.next = state["day"], state["blocks"], state["next"]
            self.pending, self.head = state["pending"], state.get("head", "")
            self.served = state.get("served", [])

    def state(self):
        return {"day": self.day, "blocks": self.blocks, "next": self.next,
                "pending": self.pending, "served": self.served, "head": self.head}

    def save(self):
        pass

    def set_blocks(self, blocks, day, head=""):
        """A range already held keeps its pointer; a new prefix starts at its first number;
        a new day starts every prefix again (numbers are per day)."""
        if day != self.day:
            self.next = {}
            self.day = day
        for prefix, ranges in blocks.items():
            if prefix not in self.next and ranges:
                self.next[prefix] = ranges[0][0]
        self.blocks = blocks
        if head:
            self.head = head
        self.save()

    def issue(self, prefix, item, taken_at, for_seq=None, priority=None):
        """The next unused number of prefix, recorded as pending (None when used up). The
        pointer only moves forward. `for_seq`: the unanswered take this ticket serves,
        recorded as served in the same save as the number. `priority`: the ticket's class
        (e.g. "priority"), sent with it when it joins; None for a normal ticket."""
        start = self.next.get(prefix)
        if start is None:
            return None
        best = None
        for first, last in self.blocks.get(prefix, ()):
            n = first if first > start else start
            if n <= last and (best is None or n < best):
                best = n
        if best is None:
            return None
        number = "%s%03d" % (prefix, best)
        self.next[prefix] = best + 1
        self.pending.append([number, item, taken_at, for_seq, priority])
        if for_seq is not None:
            self.served.append(for_seq)
            if len(self.served) > SERVED_KEEP:
                self.served.pop(0)
        self.save()
        return number

    def submission(self):
        """The `take` fields that join the oldest offline ticket to the hub's queue; None
        when none is left."""
        if not self.pending:
            return None
        p = self.pending[0]
        fields = {"item": p[1], "number": p[0], "taken_at": p[2]}
        if len(p) > 3 and p[3] is not None:  # books written before for_seq hold three
            fields["for_seq"] = p[3]
        if len(p) > 4 and p[4] is not None:  # and before priority classes, four
            fields["priority"] = p[4]
        return fields

    def done(self, number):
        """The hub answered that ticket's take (an `err` is final too)."""
        self.pending = [p for p in self.pending if p[0] != number]
        self.save()
