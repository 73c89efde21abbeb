"""SMS notices over SMPP 3.4: the gateway protocol Chinese SMS platforms speak.

The channel binds as a transceiver (bind_transceiver), so one TCP connection submits
(submit_sm) and takes the gateway's delivery receipts (deliver_sm, each acknowledged with
deliver_sm_resp). Text goes as UCS-2 (data_coding 8, UTF-16-BE so a character outside the
BMP travels as its surrogate pair): 70 characters fit one SMS, a longer notice is split
into parts of at most 134 octets behind a 6-octet concatenation UDH (IEI 0x00, 8-bit
reference; esm_class 0x40), never splitting a surrogate pair. English goes as UCS-2 too:
one encoding is simpler than guessing each gateway's idea of "default alphabet".

A supervisor task keeps the session up: connect, bind, enquire_link every
`enquire_interval` (no answer within `response_timeout` drops the connection), and on any
loss reconnect with capped exponential backoff. `send` waits up to `connect_timeout` for a
bound session; it never raises for a delivery problem, it answers with an `Outcome`:

* status 0 → `Sent` with the gateway's message id of each part;
* ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RSUBMITFAIL, ESME_RX_T_APPN,
  ESME_RINVBNDSTS, no response, lost connection, no session → `Retryable`;
* everything else (ESME_RINVDSTADR, ESME_RINVMSGLEN, ESME_RX_R_APPN, unknown codes …) →
  `Permanent`: an unknown code is not retried, so a gateway quirk cannot multiply SMS.

A long notice whose later part fails keeps its accepted parts: the retry of the same
`Notice.id` sends only the parts still missing, under the same UDH reference, so the
phone still joins them into one message.

Why the PDUs are written here with `struct` and no library: `smpplib` (2.2.4) is a
blocking-socket client whose `listen()` loop owns a thread (its maintainers left asyncio
out, python-smpplib PR #31); `aiosmpplib` (0.7.4) is asyncio but queue-and-hook shaped
(messages enqueued to a broker, results through hooks, its own retry and reconnect),
"partial ESME functionality" and no documentation by its own account. The hub needs each
notice's outcome awaited in its own loop and the retry bound its own (`retry.py`); the
PDUs it uses are seven fixed layouts. `smpp34` (a Rust codec with an asyncio client, first
released in 2026) is too young to carry the hub's notices; the tests use its server as an
independent check of these PDUs, beside `tools/testkit/smppd.py`, which decodes them with
its own code and can be told to throttle, drop and refuse.

Privacy: the destination is opened from the notice's `PhoneRef` only to build the
submit_sm; no log line names it (nor a receipt's source address or text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .channel import Notice, Outcome, Permanent, Retryable, Sent
from .phones import PhoneError, PhoneVault

__all__ = ["Receipt", "SmppChannel", "SmppConfig", "split_ucs2", "status_name"]

log = logging.getLogger(__name__)

BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
GENERIC_NACK = 0x80000000

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU = 65536
SM_OCTETS = 140  # one SMS's user data
UDH_LEN = 6  # 05 00 03 ref total seq
PART_OCTETS = SM_OCTETS - UDH_LEN

STATUS = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x14: "ESME_RMSGQFUL",
    0x45: "ESME_RSUBMITFAIL",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x58: "ESME_RTHROTTLED",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
}
RETRYABLE = frozenset({0x04, 0x08, 0x14, 0x45, 0x58, 0x64})


def status_name(status: int) -> str:
    return STATUS.get(status, f"0x{status:08X}")


@dataclass(frozen=True, slots=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    source_addr: str  # the centre's sender number or code at the gateway
    system_type: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_format: Literal["international", "national"] = "international"  # 86138… or 138…
    request_receipts: bool = True
    enquire_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 5.0
    reconnect_first: float = 0.2
    reconnect_max: float = 30.0
    max_parts: int = 8

    def __post_init__(self) -> None:
        if len(self.system_id.encode()) > 15 or len(self.password.encode()) > 8:
            raise ValueError("smpp: system_id is at most 15 octets, password at most 8")
        if not 0 < self.port < 65536:
            raise ValueError(f"smpp: port {self.port} out of range")
        if not 1 <= self.max_parts <= 255:
            raise ValueError("smpp: max_parts must be 1..255")
        if min(self.enquire_interval, self.response_timeout, self.connect_timeout,
               self.reconnect_first, self.reconnect_max) <= 0:
            raise ValueError("smpp: every interval and timeout must be > 0")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt the gateway sent back: `state` as the receipt says it
    (DELIVRD, UNDELIV, EXPIRED, REJECTD …)."""

    message_id: str
    state: str


# ---------------------------------------------------------------- PDUs (pure)


def pdu(command_id: int, status: int, seq: int, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, seq) + body


def cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def bind_body(cfg: SmppConfig) -> bytes:
    return (cstr(cfg.system_id) + cstr(cfg.password) + cstr(cfg.system_type)
            + bytes((0x34, cfg.source_ton, cfg.source_npi)) + cstr(""))


def submit_body(cfg: SmppConfig, dest: str, short_message: bytes, udh: bool) -> bytes:
    dest_ton, dest_npi = (1, 1) if cfg.dest_format == "international" else (0, 1)
    return (cstr("") + bytes((cfg.source_ton, cfg.source_npi)) + cstr(cfg.source_addr)
            + bytes((dest_ton, dest_npi)) + cstr(dest)
            + bytes((0x40 if udh else 0x00, 0, 0)) + cstr("") + cstr("")
            + bytes((1 if cfg.request_receipts else 0, 0, 8, 0, len(short_message)))
            + short_message)


def split_ucs2(text: str, max_parts: int) -> list[bytes]:
    """`text` as UTF-16-BE SMS payloads: one of up to 140 octets, or parts of up to 134
    (the UDH is added per send), none ending inside a surrogate pair. ValueError if it
    needs more than `max_parts` parts or is empty."""
    data = text.encode("utf-16-be")
    if not data:
        raise ValueError("empty text")
    if len(data) <= SM_OCTETS:
        return [data]
    parts: list[bytes] = []
    i = 0
    while i < len(data):
        end = min(i + PART_OCTETS, len(data))
        if end < len(data) and 0xD8 <= data[end - 2] <= 0xDB:  # high surrogate last
            end -= 2
        parts.append(data[i:end])
        i = end
    if len(parts) > max_parts:
        raise ValueError(f"{len(parts)} parts, more than {max_parts}")
    return parts


def udh(ref: int, total: int, seq: int) -> bytes:
    return bytes((0x05, 0x00, 0x03, ref & 0xFF, total, seq))


def _cstr_at(body: bytes, i: int, limit: int = 256) -> tuple[str, int]:
    end = body.index(b"\0", i, min(len(body), i + limit))
    return body[i:end].decode("latin-1"), end + 1


def parse_deliver_sm(body: bytes) -> tuple[int, bytes, dict[int, bytes]]:
    """esm_class, short_message and TLVs of a deliver_sm body (addresses skipped)."""
    _, i = _cstr_at(body, 0)  # service_type
    _, i = _cstr_at(body, i + 2)  # source ton/npi, source_addr
    _, i = _cstr_at(body, i + 2)  # dest ton/npi, destination_addr
    esm_class = body[i]
    _, i = _cstr_at(body, i + 3)  # esm, protocol_id, priority; schedule_delivery_time
    _, i = _cstr_at(body, i)  # validity_period
    i += 4  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    length = body[i]
    short_message = body[i + 1:i + 1 + length]
    i += 1 + length
    tlvs: dict[int, bytes] = {}
    while i + 4 <= len(body):
        tag, n = struct.unpack_from(">HH", body, i)
        tlvs[tag] = body[i + 4:i + 4 + n]
        i += 4 + n
    return esm_class, short_message, tlvs


def parse_receipt(body: bytes) -> Receipt | None:
    """The receipt in a deliver_sm (esm_class bit 2), from its TLVs receipted_message_id
    (0x001E) and message_state (0x0427) or from the text "id:… stat:…"; None if the
    deliver_sm is not a receipt."""
    esm_class, short_message, tlvs = parse_deliver_sm(body)
    if not esm_class & 0x04:
        return None
    fields: dict[str, str] = {}
    for word in short_message.decode("latin-1").split(" "):
        key, sep, value = word.partition(":")
        if sep:
            fields.setdefault(key.lower(), value)
    message_id = tlvs.get(0x001E, b"").rstrip(b"\0").decode("latin-1") or fields.get("id", "")
    state = fields.get("stat", "")
    if not state and 0x0427 in tlvs:
        state = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                 7: "UNKNOWN", 8: "REJECTD"}.get(tlvs[0x0427][0], "UNKNOWN")
    return Receipt(message_id, state)


# ---------------------------------------------------------------- the session


class _SessionLost(Exception):
    pass


class _BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status_name(status))
        self.status = status


class _Session:
    """One bound TCP connection: requests matched to responses by sequence number, the
    gateway's own requests answered, enquire_link keepalive."""

    def __init__(self, cfg: SmppConfig, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, on_receipt: Callable[[Receipt], None] | None):
        self.cfg = cfg
        self.reader = reader
        self.writer = writer
        self.on_receipt = on_receipt
        self.pending: dict[int, asyncio.Future[tuple[int, int, bytes]]] = {}
        self.seq = 0
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._read(), name="smpp-read")]

    def start_keepalive(self) -> None:
        self.tasks.append(asyncio.create_task(self._keepalive(), name="smpp-keepalive"))

    def _next_seq(self) -> int:
        self.seq = self.seq % 0x7FFFFFFF + 1
        return self.seq

    async def request(self, command_id: int, body: bytes = b"") -> tuple[int, int, bytes]:
        """(response command_id, status, body); _SessionLost, or TimeoutError after
        `response_timeout` (which also drops the connection: its state is unknown)."""
        if self.closed.is_set():
            raise _SessionLost()
        seq = self._next_seq()
        fut: asyncio.Future[tuple[int, int, bytes]] = asyncio.get_running_loop().create_future()
        self.pending[seq] = fut
        try:
            await self._write(pdu(command_id, 0, seq, body))
            async with asyncio.timeout(self.cfg.response_timeout):
                return await fut
        except TimeoutError:
            self.close()
            raise
        finally:
            self.pending.pop(seq, None)

    async def _write(self, data: bytes) -> None:
        if self.closed.is_set():
            raise _SessionLost()
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as e:
            self.close()
            raise _SessionLost() from e

    async def _read(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(HEADER.size)
                length, command_id, status, seq = HEADER.unpack(head)
                if not HEADER.size <= length <= MAX_PDU:
                    log.warning("smpp: PDU length %d out of range, dropping the connection",
                                length)
                    return
                body = await self.reader.readexactly(length - HEADER.size)
                if command_id & 0x80000000:
                    fut = self.pending.get(seq)
                    if fut is not None and not fut.done():
                        fut.set_result((command_id, status, body))
                    continue
                await self._answer(command_id, seq, body)
                if command_id == UNBIND:
                    log.info("smpp: the gateway unbound the session")
                    return
        except (asyncio.IncompleteReadError, ConnectionError, _SessionLost):
            return
        finally:
            self.close()

    async def _answer(self, command_id: int, seq: int, body: bytes) -> None:
        if command_id == ENQUIRE_LINK:
            await self._write(pdu(ENQUIRE_LINK_RESP, 0, seq))
        elif command_id == DELIVER_SM:
            try:
                receipt = parse_receipt(body)
            except (ValueError, IndexError):
                receipt = None
                log.warning("smpp: a deliver_sm that does not parse, acknowledged anyway")
            await self._write(pdu(DELIVER_SM_RESP, 0, seq, cstr("")))
            if receipt is not None and self.on_receipt is not None:
                self.on_receipt(receipt)
        elif command_id == UNBIND:
            await self._write(pdu(UNBIND_RESP, 0, seq))
        else:
            await self._write(pdu(GENERIC_NACK, 0x03, seq))  # ESME_RINVCMDID

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.enquire_interval):
                    await self.closed.wait()
                    return
            try:
                await self.request(ENQUIRE_LINK)
            except TimeoutError:
                log.warning("smpp: no enquire_link_resp within %.1f s, reconnecting",
                            self.cfg.response_timeout)
                return
            except _SessionLost:
                return

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(_SessionLost())
        self.writer.close()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


@dataclass
class _Progress:
    ref: int
    accepted: list[str] = field(default_factory=list)


class SmppChannel:
    """The SMS channel (`Channel`): `async with SmppChannel(cfg, vault) as sms:
    outcome = await sms.send(notice)`. `on_receipt` is called in the loop for each
    delivery receipt."""

    name = "sms"
    _PROGRESS_KEPT = 10_000

    def __init__(self, cfg: SmppConfig, vault: PhoneVault,
                 on_receipt: Callable[[Receipt], None] | None = None) -> None:
        self.cfg = cfg
        self._vault = vault
        self._on_receipt = on_receipt
        self._session: _Session | None = None
        self._bound = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._progress: dict[str, _Progress] = {}
        self._ref = 0
        self.binds = 0  # sessions bound so far (a reconnect counts one more)

    async def __aenter__(self) -> SmppChannel:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="smpp-supervisor")

    async def close(self) -> None:
        """Unbind (briefly waiting for unbind_resp) and stop reconnecting."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        session, self._session = self._session, None
        self._bound.clear()
        if session is not None and not session.closed.is_set():
            with contextlib.suppress(TimeoutError, _SessionLost):
                async with asyncio.timeout(min(self.cfg.response_timeout, 2.0)):
                    await session.request(UNBIND)
            session.close()

    async def _supervise(self) -> None:
        delay = self.cfg.reconnect_first
        while True:
            try:
                session = await self._open()
            except (OSError, TimeoutError, _SessionLost, _BindRefused) as e:
                level = logging.ERROR if isinstance(e, _BindRefused) else logging.WARNING
                log.log(level, "smpp: cannot bind to %s:%d (%s); next try in %.1f s",
                        self.cfg.host, self.cfg.port, e.__class__.__name__ + (
                            f" {e}" if str(e) else ""), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max)
                continue
            delay = self.cfg.reconnect_first
            self.binds += 1
            self._session = session
            self._bound.set()
            log.info("smpp: bound to %s:%d as a transceiver", self.cfg.host, self.cfg.port)
            await session.closed.wait()
            self._bound.clear()
            self._session = None
            log.warning("smpp: connection to %s:%d lost, reconnecting",
                        self.cfg.host, self.cfg.port)

    async def _open(self) -> _Session:
        async with asyncio.timeout(self.cfg.connect_timeout):
            reader, writer = await asyncio.open_connection(self.cfg.host, self.cfg.port)
        session = _Session(self.cfg, reader, writer, self._on_receipt)
        session.start()
        try:
            _, status, _ = await session.request(BIND_TRANSCEIVER, bind_body(self.cfg))
        except BaseException:
            session.close()
            raise
        if status != 0:
            session.close()
            raise _BindRefused(status)
        session.start_keepalive()
        return session

    async def _bound_session(self) -> _Session | None:
        self.start()
        try:
            async with asyncio.timeout(self.cfg.connect_timeout):
                await self._bound.wait()
        except TimeoutError:
            return None
        return self._session

    def _remember(self, notice_id: str) -> _Progress:
        progress = self._progress.get(notice_id)
        if progress is None:
            self._ref = self._ref % 255 + 1
            progress = self._progress[notice_id] = _Progress(self._ref)
            while len(self._progress) > self._PROGRESS_KEPT:
                del self._progress[next(iter(self._progress))]
        return progress

    async def send(self, notice: Notice) -> Outcome:
        try:
            phone = self._vault.open(notice.recipient)
        except PhoneError:
            log.error("smpp: notice %s: its recipient does not open with this centre's key",
                      notice.id)
            return Permanent("recipient does not open")
        try:
            parts = split_ucs2(notice.text, self.cfg.max_parts)
        except ValueError as e:
            return Permanent(f"text: {e}")
        dest = ("86" + phone.national) if self.cfg.dest_format == "international" \
            else phone.national
        progress = self._remember(notice.id)
        total = len(parts)
        for i, payload in enumerate(parts):
            if i < len(progress.accepted):
                continue  # accepted by an earlier attempt
            session = await self._bound_session()
            if session is None:
                log.warning("smpp: notice %s: no bound session within %.1f s", notice.id,
                            self.cfg.connect_timeout)
                return Retryable("gateway not reachable")
            message = payload if total == 1 else udh(progress.ref, total, i + 1) + payload
            try:
                resp_id, status, body = await session.request(
                    SUBMIT_SM, submit_body(self.cfg, dest, message, total > 1))
            except _SessionLost:
                log.warning("smpp: notice %s part %d/%d: connection lost", notice.id, i + 1,
                            total)
                return Retryable("connection lost")
            except TimeoutError:
                log.warning("smpp: notice %s part %d/%d: no submit_sm_resp", notice.id,
                            i + 1, total)
                return Retryable("no submit_sm_resp")
            if resp_id == SUBMIT_SM_RESP and status == 0:
                progress.accepted.append(body.split(b"\0", 1)[0].decode("latin-1"))
                continue
            name = status_name(status) if resp_id == SUBMIT_SM_RESP else "generic_nack " + \
                status_name(status)
            if status in RETRYABLE:
                log.warning("smpp: notice %s part %d/%d: %s, retryable", notice.id, i + 1,
                            total, name)
                return Retryable(name)
            self._progress.pop(notice.id, None)
            log.error("smpp: notice %s part %d/%d: %s, not retried", notice.id, i + 1, total,
                      name)
            return Permanent(name)
        self._progress.pop(notice.id, None)
        log.info("smpp: notice %s (%s) sent in %d part(s)", notice.id, notice.kind, total)
        return Sent(tuple(progress.accepted))
