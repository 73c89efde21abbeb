"""A protocol-level SMPP 3.4 server (SMSC) stand-in, for the SMS channel's tests and
benchmark.

No SMSC product can be installed here as a server process (the registries reached have
SMPP libraries, not an SMSC; one test also runs the `smpp34` library's server as an
independent check, but it cannot be told to misbehave), so this asyncio server speaks the
real PDUs on a loopback TCP port: bind_transceiver(_resp), submit_sm(_resp),
enquire_link(_resp) both ways, unbind(_resp), generic_nack, and deliver_sm delivery
receipts whose deliver_sm_resp it counts.
It decodes every PDU itself with `struct`, independently of `hub/notify/smpp.py`, and joins
concatenated parts (UDH IEI 0x00) back into whole messages as a phone would.

It can be told to misbehave: `throttle(n)` (the next n submit_sm get ESME_RTHROTTLED),
`drop(n)` (the next n submit_sm close the connection unanswered), `refuse(dest)`
(ESME_RINVDSTADR for that destination), `mute_enquire_link` (stop answering keepalives).
Tests wait on its records with `wait_for(predicate)`, never by sleeping.

It logs nothing about destinations or text: the channel's tests check that no phone number
reaches any log.

    python -m onewindow.tools.testkit.smppd --port 2775   # run one by hand
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Message", "SmppStandIn", "Submit"]

_HDR = struct.Struct(">IIII")
_BIND_TRX, _BIND_TRX_RESP = 0x09, 0x80000009
_SUBMIT, _SUBMIT_RESP = 0x04, 0x80000004
_DELIVER, _DELIVER_RESP = 0x05, 0x80000005
_UNBIND, _UNBIND_RESP = 0x06, 0x80000006
_ENQUIRE, _ENQUIRE_RESP = 0x15, 0x80000015
_NACK = 0x80000000
ROK, RINVMSGLEN, RINVBNDSTS, RINVDSTADR, RINVPASWD, RTHROTTLED = 0, 1, 4, 0x0B, 0x0E, 0x58


@dataclass(frozen=True)
class Submit:
    """One submit_sm as received, with the status it was answered with (None: the
    connection was dropped instead)."""

    dest: str
    dest_ton: int
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    status: int | None
    received: float  # time.perf_counter()


@dataclass(frozen=True)
class Message:
    """A whole message as the phone would show it (parts joined)."""

    dest: str
    text: str
    parts: int
    completed: float  # time.perf_counter() of its last part


def _cstr(body: bytes, i: int) -> tuple[str, int]:
    end = body.index(b"\0", i)
    return body[i:end].decode("latin-1"), end + 1


class SmppStandIn:
    def __init__(self, system_id: str = "onewindow", password: str = "secret", *,
                 receipts: bool = True) -> None:
        self.system_id = system_id
        self.password = password
        self.receipts = receipts
        self.port = 0
        self.submits: list[Submit] = []
        self.messages: list[Message] = []
        self.binds = 0
        self.connections = 0
        self.enquire_links = 0
        self.receipts_acked = 0
        self.unbinds = 0
        self.mute_enquire_link = False
        self._throttle = self._throttle_after = 0
        self._drop = self._drop_after = 0
        self.enquire_answers = 0  # enquire_link_resp to our own enquire_link
        self._refused: set[str] = set()
        self._parts: dict[tuple[str, int, int], dict[int, bytes]] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Condition()
        self._next_id = 0
        self._seq = 0x40000000
        self._receipt_seqs: set[int] = set()

    # ------------------------------------------------------------ control

    def throttle(self, n: int, after: int = 0) -> None:
        """Answer ESME_RTHROTTLED to n submit_sm, once `after` more were answered."""
        self._throttle, self._throttle_after = n, after

    def drop(self, n: int, after: int = 0) -> None:
        """Close the connection on n submit_sm (unanswered), once `after` more were
        answered."""
        self._drop, self._drop_after = n, after

    def refuse(self, dest: str) -> None:
        self._refused.add(dest)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmppStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until `predicate()` holds (checked after every PDU); TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    # ------------------------------------------------------------ the protocol

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        bound = False
        try:
            while True:
                head = await reader.readexactly(16)
                length, cmd, _status, seq = _HDR.unpack(head)
                if length < 16 or length > 65536:
                    return
                body = await reader.readexactly(length - 16)
                if cmd == _BIND_TRX:
                    system_id, i = _cstr(body, 0)
                    password, i = _cstr(body, i)
                    ok = system_id == self.system_id and password == self.password
                    version = body[_cstr(body, i)[1]]
                    status = ROK if ok and version == 0x34 else RINVPASWD
                    bound = status == ROK
                    self.binds += bound
                    self._send(writer, _BIND_TRX_RESP, status, seq,
                               b"standin\0" if bound else b"")
                elif cmd == _ENQUIRE:
                    self.enquire_links += 1
                    if not self.mute_enquire_link:
                        self._send(writer, _ENQUIRE_RESP, ROK, seq)
                elif cmd == _SUBMIT:
                    if not await self._submit(writer, body, seq, bound):
                        return
                elif cmd == _DELIVER_RESP:
                    if seq in self._receipt_seqs:
                        self._receipt_seqs.discard(seq)
                        self.receipts_acked += 1
                elif cmd == _UNBIND:
                    self.unbinds += 1
                    self._send(writer, _UNBIND_RESP, ROK, seq)
                    await writer.drain()
                    return
                elif cmd == _ENQUIRE_RESP:
                    self.enquire_answers += 1
                else:
                    self._send(writer, _NACK, 0x03, seq)
                await writer.drain()
                await self._changed_now()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            await self._changed_now()

    async def _submit(self, writer: asyncio.StreamWriter, body: bytes, seq: int,
                      bound: bool) -> bool:
        _, i = _cstr(body, 0)  # service_type
        _, i = _cstr(body, i + 2)  # source ton/npi + source_addr
        dest_ton = body[i]
        dest, i = _cstr(body, i + 2)
        esm_class = body[i]
        _, i = _cstr(body, i + 3)  # schedule_delivery_time
        _, i = _cstr(body, i)  # validity_period
        registered, data_coding, sm_length = body[i], body[i + 2], body[i + 4]
        sm = body[i + 5:i + 5 + sm_length]
        now = time.perf_counter()
        if self._drop > 0 and self._drop_after > 0:
            self._drop_after -= 1
        elif self._drop > 0:
            self._drop -= 1
            self.submits.append(Submit(dest, dest_ton, data_coding, esm_class, registered, sm,
                                       None, now))
            return False
        if not bound:
            status = RINVBNDSTS
        elif self._throttle > 0 and self._throttle_after == 0:
            self._throttle -= 1
            status = RTHROTTLED
        elif dest in self._refused:
            status = RINVDSTADR
        elif len(sm) != sm_length or sm_length > 140:
            status = RINVMSGLEN
        else:
            status = ROK
        if self._throttle > 0 and self._throttle_after > 0:
            self._throttle_after -= 1
        self.submits.append(Submit(dest, dest_ton, data_coding, esm_class, registered, sm,
                                   status, now))
        if status != ROK:
            self._send(writer, _SUBMIT_RESP, status, seq)
            return True
        self._next_id += 1
        message_id = f"m{self._next_id:08d}"
        self._send(writer, _SUBMIT_RESP, ROK, seq, message_id.encode() + b"\0")
        self._collect(dest, esm_class, data_coding, sm, now)
        if self.receipts and registered & 0x01:
            self._receipt(writer, dest, message_id)
        return True

    def _collect(self, dest: str, esm_class: int, data_coding: int, sm: bytes,
                 now: float) -> None:
        def text(data: bytes) -> str:
            return data.decode("utf-16-be") if data_coding == 8 else data.decode("latin-1")

        if not esm_class & 0x40:
            self.messages.append(Message(dest, text(sm), 1, now))
            return
        udhl = sm[0]
        ies, payload = sm[1:1 + udhl], sm[1 + udhl:]
        j = 0
        while j + 2 <= len(ies):
            iei, n = ies[j], ies[j + 1]
            if iei == 0x00 and n == 3:
                ref, total, part = ies[j + 2], ies[j + 3], ies[j + 4]
                got = self._parts.setdefault((dest, ref, total), {})
                got[part] = payload
                if len(got) == total:
                    del self._parts[(dest, ref, total)]
                    whole = b"".join(got[k] for k in range(1, total + 1))
                    self.messages.append(Message(dest, text(whole), total, now))
                return
            j += 2 + n

    def _receipt(self, writer: asyncio.StreamWriter, dest: str, message_id: str) -> None:
        self._seq += 1
        stamp = time.strftime("%y%m%d%H%M")
        text = (f"id:{message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} "
                "stat:DELIVRD err:000 text:").encode()
        body = (b"\0" + bytes((1, 1)) + dest.encode() + b"\0" + bytes((0, 0)) + b"\0"
                + bytes((0x04, 0, 0)) + b"\0" + b"\0" + bytes((0, 0, 0, 0, len(text))) + text
                + struct.pack(">HH", 0x001E, len(message_id) + 1) + message_id.encode() + b"\0"
                + struct.pack(">HHB", 0x0427, 1, 2))
        self._receipt_seqs.add(self._seq)
        self._send(writer, _DELIVER, ROK, self._seq, body)

    async def enquire_clients(self) -> None:
        """Send an enquire_link to every connected client (their answers are not awaited
        here; a client that does not answer is the client's test to catch)."""
        for w in list(self._writers):
            self._seq += 1
            self._send(w, _ENQUIRE, ROK, self._seq)
            with contextlib.suppress(ConnectionError):
                await w.drain()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, cmd: int, status: int, seq: int,
              body: bytes = b"") -> None:
        writer.write(_HDR.pack(16 + len(body), cmd, status, seq) + body)


async def _main(port: int, system_id: str, password: str) -> None:
    server = SmppStandIn(system_id, password)
    await server.start("127.0.0.1", port)
    print(f"SMPP stand-in on 127.0.0.1:{server.port} (system_id {system_id!r})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=2775)
    ap.add_argument("--system-id", default="onewindow")
    ap.add_argument("--password", default="secret")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.system_id, args.password))
