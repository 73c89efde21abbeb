"""A virtual smart card for vpcd, the virtual reader driver that pcscd loads.

vpcd (Debian package `vsmartcard-vpcd`) listens on TCP (127.0.0.1:35963 for the first reader,
see /etc/reader.conf.d/vpcd); a card "is inserted" while a card program is connected to it and
"removed" when it disconnects. pcscd and every PC/SC client (pyscard on the node) then see real
insert/remove events and real APDU exchanges. Debian's own card program (vicc) is broken on
bookworm, hence this one.

Wire protocol, both ways: a 2-byte big-endian length, then that many bytes. From vpcd, a 1-byte
payload is a control message (0x00 power off, 0x01 power on, 0x02 reset, 0x04 send the ATR,
answered with the ATR); anything longer is a C-APDU, answered with the R-APDU.

The card it plays (all configurable):

* an ATR (default: an ISO 14443-4 card as a PC/SC contactless reader reports it);
* a UID answered to the PC/SC pseudo-APDU GET DATA ``FF CA 00 00 00`` — contactless readers
  answer it themselves, but through vpcd it reaches the card, so the card answers it;
* the OneWindow identity application, AID ``F0 4F 57 49 44 01`` (``F0`` = proprietary,
  unregistered; then ASCII "OWID", version 1): ``00 A4 04 00 06 <AID> 00`` selects it, then
  READ BINARY ``00 B0 00 00 00`` returns the identifier (e.g. an 18-character resident ID
  number) as ASCII;
* anything else: 6E00 (class), 6D00 (instruction), 6A82 (no such application), 6A81 (GET DATA
  of something it does not have), 6986 (READ BINARY with nothing selected).

Python API (used by the tests)::

    card = VirtualCard(uid=bytes.fromhex("04a1b2c3"), ident="310101199001011237")
    card.insert()     # connect to vpcd: pcscd sees a card inserted
    card.remove()     # disconnect: pcscd sees it removed
    card.close()

Command line (a card for manual testing; Ctrl-C removes it)::

    python -m onewindow.tools.testkit.vcard --ident 310101199001011237 --uid 04a1b2c3
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963  # vpcd's first reader ("Virtual PCD 00 00"); the second is 35964

OW_AID = bytes.fromhex("F04F57494401")  # "OWID" v1 under the proprietary F0 category

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_ALLOWED = b"\x69\x86"  # command not allowed (no current EF)
SW_FUNC_NOT_SUPPORTED = b"\x6a\x81"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1P2 = b"\x6b\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"


def atr_with_tck(body: bytes) -> bytes:
    """Append the TCK check byte (XOR of T0..last) to an ATR that offers T=1."""
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


def contactless_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC contactless reader builds for an ISO 14443-4 card (PC/SC part 3)."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    return atr_with_tck(bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical)


# "OWCARD-V1" as historical bytes, T=0/T=1 offered
DEFAULT_ATR = contactless_atr(b"OWCARD-V1")
# A plain contact card that offers T=0 only and knows nothing of us (no TCK for T=0-only ATRs).
UNKNOWN_ATR = bytes.fromhex("3B021450")


@dataclass
class CardApplet:
    """What the card answers: pure (no I/O), testable on its own."""

    atr: bytes = DEFAULT_ATR
    uid: bytes | None = None
    ident: str | None = None
    aid: bytes = OW_AID
    selected: bool = False
    apdus: list[bytes] = field(default_factory=list)  # every C-APDU seen, for tests

    def reset(self) -> None:
        self.selected = False

    def respond(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        le = body[0] if len(body) == 1 else None  # case 2 (short): Le only
        if cla == 0xFF:
            if ins != 0xCA or self.uid is None:
                return SW_CLA_NOT_SUPPORTED if self.uid is None else SW_INS_NOT_SUPPORTED
            if p1 != 0x00 or p2 != 0x00:
                return SW_FUNC_NOT_SUPPORTED
            return _cut(self.uid, le) + SW_OK
        if cla & 0xF0 not in (0x00, 0x80):
            return SW_CLA_NOT_SUPPORTED
        if ins == 0xA4:  # SELECT
            if p1 != 0x04:
                return SW_FUNC_NOT_SUPPORTED
            if not body or len(body) < 1 + body[0]:
                return SW_WRONG_LENGTH
            aid = bytes(body[1 : 1 + body[0]])
            if self.ident is None or aid != self.aid:
                self.selected = False
                return SW_FILE_NOT_FOUND
            self.selected = True
            return SW_OK
        if ins == 0xB0:  # READ BINARY
            if not self.selected or self.ident is None:
                return SW_NOT_ALLOWED
            data = self.ident.encode("ascii")
            offset = (p1 << 8) | p2
            if offset > len(data):
                return SW_WRONG_P1P2
            return _cut(data[offset:], le) + SW_OK
        return SW_INS_NOT_SUPPORTED


def _cut(data: bytes, le: int | None) -> bytes:
    if le is None or le == 0:
        return data[:256]
    return data[:le]


class VirtualCard:
    """A card that can be inserted into (connected to) and removed from a vpcd reader.

    The exchange with vpcd runs in a daemon thread while the card is inserted.
    """

    def __init__(
        self,
        *,
        atr: bytes = DEFAULT_ATR,
        uid: bytes | None = None,
        ident: str | None = None,
        aid: bytes = OW_AID,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        self.applet = CardApplet(atr=atr, uid=uid, ident=ident, aid=aid)
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.powered = False
        self.error: BaseException | None = None  # what ended the last session, if not remove()

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, timeout: float = 2.0) -> None:
        """Connect to vpcd; pcscd reports the card present on its next poll."""
        with self._lock:
            if self._sock is not None:
                return
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            self.applet.reset()
            self.powered = False
            self.error = None
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name="vcard", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Disconnect from vpcd; pcscd reports the card gone on its next poll."""
        with self._lock:
            sock, thread = self._sock, self._thread
            self._sock = self._thread = None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self.powered = False

    def close(self) -> None:
        self.remove()

    def __enter__(self) -> VirtualCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the vpcd exchange ----------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                msg = _recv_msg(sock)
                if msg is None:
                    break
                reply = self._handle(msg)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError as exc:
            if self._sock is sock:  # not our own remove()
                self.error = exc
        finally:
            with self._lock:
                if self._sock is sock:  # vpcd hung up: the card is out
                    self._sock = self._thread = None
                    sock.close()

    def _handle(self, msg: bytes) -> bytes | None:
        if len(msg) == 1:
            ctrl = msg[0]
            if ctrl == CTRL_ATR:
                return self.applet.atr
            if ctrl == CTRL_OFF:
                self.powered = False
                self.applet.reset()
            elif ctrl in (CTRL_ON, CTRL_RESET):
                self.powered = True
                self.applet.reset()
            return None
        return self.applet.respond(msg)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            # vpcd writes the length and the payload separately; with Nagle on its side and
            # delayed ACKs on ours each message would wait ~40 ms for our ACK of the length.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv_msg(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 2)
    if head is None:
        return None
    (length,) = struct.unpack(">H", head)
    return _recv_exact(sock, length) if length else b""


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=DEFAULT_HOST)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--atr", type=bytes.fromhex, default=DEFAULT_ATR, help="hex")
    ap.add_argument("--uid", type=bytes.fromhex, default=None, help="hex, e.g. 04a1b2c3")
    ap.add_argument("--ident", default=None, help="identifier read by the OWID application")
    args = ap.parse_args(list(argv) if argv is not None else None)
    card = VirtualCard(atr=args.atr, uid=args.uid, ident=args.ident, host=args.host, port=args.port)
    card.insert()
    print(f"card inserted into vpcd {args.host}:{args.port}; Ctrl-C removes it")
    try:
        while card.inserted:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        card.close()


if __name__ == "__main__":
    main()
