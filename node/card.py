"""Card reader: who tapped or inserted a card, as a keyed token that never carries the number.

`CardReader` is the small interface the node uses (start, async-iterate `CardEvent`s, close);
`PcscReader` implements it over PC/SC (pcscd + pyscard), so any standard contact or contactless
reader works, and a vendor ID-card module (the 二代证 readers with their own SDK) can be added
later as another `CardReader`.

What a standard PC/SC reader can read, in this order:

1. the ATR (always: it comes with the insert event);
2. the UID of a contactless card, by the PC/SC pseudo-APDU GET DATA ``FF CA 00 00 00``
   (the reader answers it; a contact card or a reader without it answers an error: no UID);
3. an identifier from a card application where the card allows it: for each `IdentApp`,
   SELECT by AID then READ BINARY (default: the OneWindow application, AID F0 4F 57 49 44 01,
   which holds e.g. an 18-character resident ID number — see tools/testkit/vcard.py).

pyscard blocks, so the reader runs its own thread (SCardGetStatusChange on every reader plus the
PnP pseudo-reader, so readers plugged in later are seen; SCardCancel wakes it to stop; a pcscd
restart is survived by re-establishing the context). Each card is read in that thread and the
finished event is handed to the event loop with `loop.call_soon_threadsafe` into a bounded
asyncio queue (`EventBridge`). A card that cannot be read still gives an "inserted" event, with
`error` set: nothing raises out of the thread or into the node's loop.

Privacy: `resident_token(secret, ident_or_uid)` is what leaves the node (HMAC-SHA256 keyed with
the centre secret); `mask_id()` is what goes into logs; `CardEvent`'s repr masks the identifier.
`priority_class(ident, today)` reads the birth date inside a resident ID number on the node and
gives only the class ("priority" at 60 or older): the birth date and the age never leave it.

Why one module of 530 lines: a card's identifier is read (`PcscReader`), masked for logs
(`CardEvent`'s repr, `mask_id`), keyed into what leaves the node (`resident_token`) and reduced
to a priority class (`priority_class`) in this one file, so where the raw number exists is
checked in one reading; the PC/SC thread and the bridge that hands its events to the loop
(`EventBridge`) are one threading contract (nothing raises out of the thread, a stuck node
drops the oldest event).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable

log = logging.getLogger("onewindow.node.card")

# the OneWindow identity application (tools/testkit/vcard.py)
OW_AID = bytes.fromhex("F04F57494401")
GET_UID = bytes.fromhex("FFCA000000")  # PC/SC part 3 GET DATA: UID of a contactless card
PNP_READER = "\\\\?PnP?\\Notification"  # pcsc-lite's pseudo-reader for reader plug events
MAX_PENDING = 16  # card events waiting for the node; a stuck node drops the oldest
MAX_FAILURES = 3  # unexplained PC/SC errors in a row before the context is established anew
TOKEN_CHARS = 32  # base32 characters of the HMAC kept: 160 bits

Kind = Literal["inserted", "removed"]


@dataclass(frozen=True)
class CardEvent:
    kind: Kind
    reader: str
    atr: bytes = b""
    uid: bytes | None = None
    ident: str | None = None
    error: str | None = None
    at: float = field(default_factory=time.monotonic, compare=False)  # when it was read

    @property
    def identity(self) -> str | bytes | None:
        """What `resident_token` is made from: the identifier if read, else the UID."""
        return self.ident if self.ident is not None else self.uid

    def __repr__(self) -> str:  # never the raw identifier in logs or tracebacks
        ident = mask_id(self.ident) if self.ident is not None else None
        uid = self.uid.hex() if self.uid is not None else None
        return (
            f"CardEvent({self.kind} reader={self.reader!r} atr={self.atr.hex()} uid={uid} "
            f"ident={ident} error={self.error!r})"
        )

    __str__ = __repr__


@runtime_checkable
class CardReader(Protocol):
    """A source of card events. Usage::

    async with reader:            # start() ... close()
        async for event in reader:
            ...
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[CardEvent]: ...

    async def __aenter__(self) -> CardReader: ...

    async def __aexit__(self, *exc: object) -> None: ...


# -- privacy helpers ----------------------------------------------------------------------------


def resident_token(secret: bytes, ident_or_uid: str | bytes) -> str:
    """The keyed, one-way token for a card identity: what the node sends instead of the number.

    HMAC-SHA256 keyed with the centre secret, over a typed message (an identifier and a UID with
    the same bytes give different tokens), base32 lower case, first 32 characters (160 bits).
    Identifiers are normalised (spaces dropped, upper case: a trailing check letter 'x' = 'X').
    """
    if not secret:
        raise ValueError("resident_token needs the centre secret")
    if isinstance(ident_or_uid, bytes | bytearray):
        msg = b"uid:" + bytes(ident_or_uid)
    else:
        norm = "".join(ident_or_uid.split()).upper()
        if not norm:
            raise ValueError("empty identifier")
        msg = b"id:" + norm.encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:TOKEN_CHARS]


def mask_id(number: str | None) -> str:
    """'310101199001011237' -> '3101**********1237' (length kept, middle hidden) for logs."""
    if not number:
        return ""
    n = len(number)
    if n <= 8:
        return "*" * n
    return number[:4] + "*" * (n - 8) + number[-4:]


PRIORITY_AGE = 60  # 老年人优先: residents this old or older get a priority ticket
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # GB 11643-1999
ID_CHECK = "10X98765432"
OLDEST = 150  # a birth date further back than this is not a real one


def birth_date(ident: str) -> date | None:
    """The birth date inside a mainland resident ID number, or None.

    18 characters: 6-digit region, YYYYMMDD (positions 7-14), 3-digit sequence, check
    character (GB 11643, verified: a number that fails it is not read). 15 digits (the first
    generation, issued until 2004): region, YYMMDD (positions 7-12) of 19YY, sequence.
    Spaces are ignored and a check 'x' is 'X'. Anything else, or a date that does not exist
    (19900230), is None.
    """
    norm = "".join(ident.split()).upper()
    if len(norm) == 18:
        body, check = norm[:17], norm[17]
        if not (body.isdigit() and body.isascii()):
            return None
        total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
        if ID_CHECK[total % 11] != check:
            return None
        y, m, d = int(norm[6:10]), int(norm[10:12]), int(norm[12:14])
    elif len(norm) == 15:
        if not (norm.isdigit() and norm.isascii()):
            return None
        y, m, d = 1900 + int(norm[6:8]), int(norm[8:10]), int(norm[10:12])
    else:
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


def age_on(born: date, today: date) -> int:
    """Whole years from `born` to `today` (one born on 29 February turns a year older on
    1 March in a common year)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def priority_class(ident: str | None, today: date, age: int = PRIORITY_AGE) -> str | None:
    """"priority" when the ID number's holder is `age` or older on `today`, else None (a
    normal ticket): a card without a readable resident ID number, an impossible or future
    birth date, or `age` 0 (the centre gives no priority by age). Only this class leaves
    the node, never the birth date, the age or the number."""
    if age <= 0 or not ident:
        return None
    born = birth_date(ident)
    if born is None or born > today:
        return None
    years = age_on(born, today)
    if years > OLDEST:
        return None
    return "priority" if years >= age else None


# -- the thread → asyncio bridge ----------------------------------------------------------------


class EventBridge:
    """`post(event)` from any thread, `await get()` on the loop; bounded, drops the oldest."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = MAX_PENDING) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[CardEvent | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def post(self, event: CardEvent | None) -> bool:
        """Thread-safe; None wakes `get` to end iteration. False if the loop is gone."""
        try:
            self.loop.call_soon_threadsafe(self._put, event)
            return True
        except RuntimeError:  # loop closed: the node is shutting down
            return False

    def _put(self, event: CardEvent | None) -> None:
        if self.queue.full():
            old = self.queue.get_nowait()
            self.dropped += 1
            log.warning("card event dropped (%d waiting): %r", self.queue.maxsize, old)
        self.queue.put_nowait(event)

    async def get(self) -> CardEvent | None:
        return await self.queue.get()


# -- PC/SC --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentApp:
    """A card application holding an identifier: SELECT `aid`, then `read` (READ BINARY)."""

    aid: bytes
    read: bytes = bytes.fromhex("00B0000000")
    name: str = ""

    def select(self) -> bytes:
        return bytes([0x00, 0xA4, 0x04, 0x00, len(self.aid)]) + self.aid + b"\x00"


DEFAULT_APPS: tuple[IdentApp, ...] = (IdentApp(OW_AID, name="onewindow"),)


class CardError(Exception):
    pass


def _parse_ident(data: bytes) -> str | None:
    """An identifier is printable ASCII (1-64 chars, NUL/space padding dropped)."""
    try:
        text = data.rstrip(b"\x00 \xff").decode("ascii")
    except UnicodeDecodeError:
        return None
    if not (0 < len(text) <= 64) or not text.isprintable():
        return None
    return text


class PcscReader:
    """`CardReader` over PC/SC. `readers`: substrings of the reader names to watch (None: all)."""

    def __init__(
        self,
        *,
        readers: Sequence[str] | None = None,
        apps: Sequence[IdentApp] = DEFAULT_APPS,
        max_pending: int = MAX_PENDING,
        poll_ms: int = 1000,
        retry_s: float = 1.0,
    ) -> None:
        self.reader_filter = tuple(readers) if readers else None
        self.apps = tuple(apps)
        self.max_pending = max_pending
        self.poll_ms = poll_ms  # wake-up period of the monitor thread (stop is by SCardCancel)
        self.retry_s = retry_s  # pcscd gone: try again after this
        self.bridge: EventBridge | None = None
        self.status = "stopped"  # "ok" | "no pcscd" | "no reader" | ... for the node's status
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ctx: Any = None
        self._ctx_lock = threading.Lock()
        self._closed = False

    # -- CardReader -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None:
            return
        import smartcard.scard  # type: ignore[import-untyped]  # noqa: F401  (fail early)

        self.bridge = EventBridge(asyncio.get_running_loop(), self.max_pending)
        self._stop.clear()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._cancel()
        await asyncio.to_thread(thread.join, 5.0)
        if self.bridge is not None:
            self.bridge.post(None)
        self.status = "stopped"

    async def __aenter__(self) -> PcscReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[CardEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[CardEvent]:
        if self.bridge is None:
            raise RuntimeError("PcscReader.start() first")
        while True:
            event = await self.bridge.get()
            if event is None:
                return
            yield event

    async def next_event(self, timeout: float | None = None) -> CardEvent:
        """The next event (a convenience for callers that do not iterate)."""
        if self.bridge is None:
            raise RuntimeError("PcscReader.start() first")
        event = await asyncio.wait_for(self.bridge.get(), timeout)
        if event is None:
            raise EOFError("card reader closed")
        return event

    # -- the monitor thread ---------------------------------------------------------------------

    def _cancel(self) -> None:
        from smartcard import scard  # type: ignore[import-untyped]

        with self._ctx_lock:
            if self._ctx is not None:
                scard.SCardCancel(self._ctx)

    def _post(self, event: CardEvent) -> None:
        if event.error:
            log.warning("card %s on %s: %s", event.kind, event.reader, event.error)
        else:
            log.info("%r", event)
        assert self.bridge is not None
        self.bridge.post(event)

    def _run(self) -> None:
        from smartcard import scard  # type: ignore[import-untyped]

        while not self._stop.is_set():
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr != scard.SCARD_S_SUCCESS:
                self._set_status("no pcscd", scard.SCardGetErrorMessage(hr))
                self._stop.wait(self.retry_s)
                continue
            with self._ctx_lock:
                self._ctx = ctx
            try:
                self._watch(ctx)
            except Exception:  # never out of the thread: log, back off, start over
                log.exception("card reader monitor failed; restarting")
                self._stop.wait(self.retry_s)
            finally:
                with self._ctx_lock:
                    self._ctx = None
                scard.SCardReleaseContext(ctx)

    def _set_status(self, status: str, detail: str = "") -> None:
        if status != self.status:
            (log.info if status == "ok" else log.warning)("card reader: %s %s", status, detail)
        self.status = status

    def _watch(self, ctx: Any) -> None:
        """Follow every reader until stop, pcscd going away, or the reader list changing."""
        from smartcard import scard  # type: ignore[import-untyped]

        # pcscd stopped under us: the call in flight gets "RPC transport error" (its socket
        # closed), later ones "service not available" or "invalid handle". The context is
        # dead either way: drop it and establish a new one once pcscd is back.
        gone = (
            scard.SCARD_E_NO_SERVICE,
            scard.SCARD_E_SERVICE_STOPPED,
            scard.SCARD_E_INVALID_HANDLE,
            scard.SCARD_F_COMM_ERROR,
        )
        failures = 0  # other errors in a row on this context
        # reader -> (last event state, the ATR of the card we reported inserted, or None)
        known: dict[str, tuple[int, bytes | None]] = {}
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            hr, names = scard.SCardListReaders(ctx, [])
            if hr in gone:
                # pcscd went away between two waits for a change (a busy machine makes that
                # window wider): the cards it knew of are out all the same (CI once waited
                # 10 s for a "removed" that this path never sent)
                self._set_status("no pcscd", scard.SCardGetErrorMessage(hr))
                self._drop(known, "pcscd went away")
                self._stop.wait(self.retry_s)
                return
            if hr != scard.SCARD_S_SUCCESS:
                names = []
            names = [n for n in names if self._wanted(n)]
            for name in list(known):
                if name not in names:  # reader unplugged with a card in it: that card is out
                    # (also what a stopping pcscd shows first: it lets its readers go before
                    # its service; the event says which of the two the reader saw)
                    _, atr = known.pop(name)
                    if atr is not None:
                        self._post(CardEvent("removed", name, atr, error="reader gone"))
            self._set_status("ok" if names else "no reader")
            states = [(n, known.get(n, (scard.SCARD_STATE_UNAWARE, None))[0]) for n in names]
            states.append((PNP_READER, pnp_state))
            hr, new = scard.SCardGetStatusChange(ctx, self.poll_ms, states)
            if hr in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if hr in gone:
                self._set_status("no pcscd", scard.SCardGetErrorMessage(hr))
                self._drop(known, "pcscd went away")
                return
            if hr != scard.SCARD_S_SUCCESS:
                log.warning("SCardGetStatusChange: %s", scard.SCardGetErrorMessage(hr))
                self._stop.wait(self.retry_s)
                failures += 1
                if failures >= MAX_FAILURES:  # an error no retry mends: a fresh context
                    self._set_status("error", scard.SCardGetErrorMessage(hr))
                    self._drop(known, f"reader error: {scard.SCardGetErrorMessage(hr)}")
                    return
                continue
            failures = 0
            for name, event_state, atr_list in new:
                state = event_state & ~scard.SCARD_STATE_CHANGED
                if name == PNP_READER:
                    pnp_state = state
                    continue
                prev_state, prev_atr = known.get(name, (scard.SCARD_STATE_UNAWARE, None))
                present = bool(state & scard.SCARD_STATE_PRESENT)
                # pcsc-lite counts card events in the upper 16 bits: a quick remove + insert
                # between two polls still shows as a new card.
                new_card = present and (prev_atr is None or (state >> 16) != (prev_state >> 16))
                if prev_atr is not None and (not present or new_card):
                    self._post(CardEvent("removed", name, prev_atr))
                    prev_atr = None
                if new_card:
                    atr = bytes(atr_list)
                    if state & scard.SCARD_STATE_MUTE:
                        event = CardEvent("inserted", name, atr, error="card does not answer")
                    else:
                        event = self._read(ctx, name, atr)
                    self._post(event)
                    prev_atr = atr
                known[name] = (state, prev_atr)

    def _drop(self, known: dict[str, tuple[int, bytes | None]], why: str) -> None:
        """The context is given up: every card reported inserted is reported removed (the
        next context reports what is in the readers then as new)."""
        for name, (_, atr) in known.items():
            if atr is not None:
                self._post(CardEvent("removed", name, atr, error=why))

    def _wanted(self, name: str) -> bool:
        return self.reader_filter is None or any(f in name for f in self.reader_filter)

    # -- reading one card -----------------------------------------------------------------------

    def _read(self, ctx: Any, reader: str, atr: bytes) -> CardEvent:
        from smartcard import scard  # type: ignore[import-untyped]

        hr, card, proto = scard.SCardConnect(
            ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if hr != scard.SCARD_S_SUCCESS:
            return CardEvent(
                "inserted", reader, atr, error=f"cannot connect: {scard.SCardGetErrorMessage(hr)}"
            )
        uid: bytes | None = None
        ident: str | None = None
        error: str | None = None
        try:

            def tx(apdu: bytes) -> tuple[bytes, int]:
                return _transmit(lambda a: scard.SCardTransmit(card, proto, list(a)), apdu)

            data, sw = tx(GET_UID)
            if sw == 0x9000 and data:
                uid = data
            for app in self.apps:
                _, sw = tx(app.select())
                if sw != 0x9000:
                    continue
                data, sw = tx(app.read)
                if sw == 0x9000:
                    ident = _parse_ident(data)
                    if ident is None:
                        error = f"identifier in application {app.name or app.aid.hex()} unreadable"
                    break
            if uid is None and ident is None and error is None:
                error = "unknown card: no UID and no identifier application"
        except CardError as exc:
            error = f"card read failed: {exc}"
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        return CardEvent("inserted", reader, atr, uid=uid, ident=ident, error=error)


def _transmit(send: Callable[[bytes], tuple[int, list[int]]], apdu: bytes) -> tuple[bytes, int]:
    """One APDU with the T=0 fix-ups (61xx: GET RESPONSE, 6Cxx: resend with the right Le)."""
    from smartcard import scard  # type: ignore[import-untyped]

    data = b""
    for _ in range(16):
        hr, resp = send(apdu)
        if hr != scard.SCARD_S_SUCCESS:
            raise CardError(scard.SCardGetErrorMessage(hr))
        if len(resp) < 2:
            raise CardError(f"short response {bytes(resp).hex()}")
        body, sw1, sw2 = bytes(resp[:-2]), resp[-2], resp[-1]
        if sw1 == 0x61:
            data += body
            apdu = bytes([0x00, 0xC0, 0x00, 0x00, sw2])
            continue
        if sw1 == 0x6C:
            apdu = apdu[:4] + bytes([sw2]) if len(apdu) <= 5 else apdu[:-1] + bytes([sw2])
            continue
        return data + body, (sw1 << 8) | sw2
    raise CardError("card keeps asking for GET RESPONSE")
