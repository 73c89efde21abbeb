# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# OTA, the part a board needs only while it takes an update: imported by ow/ota.py when an
# offer comes, so its bytecode costs no RAM the rest of the time. It checks the offer
# (signature, role, board, chunk size, free flash), fetches the bundle chunk by chunk into
# the staging file while hashing it, unpacks it to /next checking every file, writes
# ota.json "staged" and resets; or refuses with a code and leaves the running version be.
#
# Bundle: b"OWB1", manifest length (4 bytes, big-endian), the manifest JSON
# {"format": 1, "version", "roles", "boards", "files": [{"p", "n", "h"}]}, then the files'
# bytes in manifest order (hub/ota/bundle.py builds it).

import asyncio
import binascii
import gc
import hashlib
import json
import os
import time

import ow_protocol as P
from micropython import const

_MAX_CHUNK = const(2048)  # raw bytes; base64 in JSON stays under owmqtt's 4 KB max_payload
_TRIES = const(4)  # requests per chunk before giving up
_CHUNK_WAIT_MS = const(4000)
_COPY = const(512)  # unpack buffer
_E = const(65537)
# ASN.1 DigestInfo of a SHA-256 hash (PKCS #1 v1.5, RFC 8017 9.2)
_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def rmtree(path):
    # main.py (the boot loader) keeps its own copy on purpose: it must run with no app code.
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if mode & 0x4000:
        for name in os.listdir(path):
            rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def verify_sig(digest, sig, pubkey):
    """RSA PKCS #1 v1.5 with SHA-256: does `sig` sign `digest` under the modulus `pubkey`
    (base64, big-endian; e = 65537)? One pow() with a 17-bit exponent: cheap even on MPZ."""
    nb = binascii.a2b_base64(pubkey)
    while nb and nb[0] == 0:
        nb = nb[1:]
    k = len(nb)
    if k < 128 or len(sig) != k or len(digest) != 32:
        return False
    n = int.from_bytes(nb, "big")
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, _E, n).to_bytes(k, "big")
    pad = k - 3 - len(_DIGEST_INFO) - 32
    return em == b"\x00\x01" + b"\xff" * pad + b"\x00" + _DIGEST_INFO + digest


def _safe(path):
    if not path or path[0] == "/" or ".." in path or "ow_version" in path:
        return False
    for ch in path:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_-./"):
            return False
    return True


def _makedirs(base, path):
    d = base
    for part in path.split("/")[:-1]:
        d += "/" + part
        try:
            os.mkdir(d)
        except OSError:
            pass  # exists


class Refused(Exception):
    def __init__(self, code, msg=""):
        super().__init__(code)
        self.code = code
        self.msg = msg


class Fetch:
    """One offer, from checks to reset (or refusal). `u` is the resident Updater: it routes
    chunk and cancel messages into u.slot / u.cancel."""

    def __init__(self, u):
        self.u = u
        self.cfg = u.cfg
        self.board = u.board

    async def _send(self, typ, oid, **fields):
        await self.u.send(typ, oid, **fields)

    async def run(self, offer):
        oid = offer["id"]
        self.u.cancel = False
        self.board.emit("ota", state="offer", version=offer["version"], size=offer["size"])
        base = self.u.root()
        try:
            stats = await self._fetch(offer, base)
            self._unpack(offer, base)
        except Exception as e:  # MemoryError, flash full, a refusal: the old version stays
            code = e.code if isinstance(e, Refused) else "error"
            why = e.msg if isinstance(e, Refused) else repr(e)
            rmtree(base + "/ota.bin")
            rmtree(base + "/next")
            self.u.busy = None
            self.board.emit("ota", state="refused", code=code, msg=why)
            try:
                await self._send("refused", oid, code=code, msg=why[:120])
            except Exception:
                pass
            return
        rmtree(base + "/ota.bin")
        self.u.save_state({"state": "staged", "version": offer["version"], "prev": self.u.fw})
        stats["state"] = "staged"
        stats["version"] = offer["version"]
        self.board.emit("ota", **stats)
        try:
            await asyncio.wait_for_ms(self._send("done", oid, version=offer["version"]), 3000)
        except Exception:
            pass
        await asyncio.sleep_ms(200)  # let the PUBACK and the log line out
        self.board.reset()  # the loader swaps and boots the new version

    def _check_offer(self, offer, base):
        key = self.cfg.get("ota_pubkey")
        if not key:
            raise Refused("no_key", "ow.json has no ota_pubkey")
        try:
            digest = binascii.unhexlify(offer["sha256"])
            sig = binascii.a2b_base64(offer["sig"])
        except ValueError:
            raise Refused("bad_sig", "sha256 or sig is not hex / base64")
        if not verify_sig(digest, sig, key):
            raise Refused("bad_sig", "signature does not match the centre key")
        self._compatible(offer.get("roles"), offer.get("boards"))
        self._forward(offer["version"], offer.get("downgrade"))
        if offer["chunk"] < 1 or offer["chunk"] > _MAX_CHUNK:
            raise Refused("chunk_size", "chunk above %d bytes" % _MAX_CHUNK)
        try:
            st = os.statvfs(base or "/")
            free = st[0] * st[4]
        except (OSError, AttributeError):
            free = None
        if free is not None and free < 2 * offer["size"] + 8192:
            raise Refused("no_space", "%d bytes free" % free)
        return digest

    def _forward(self, version, downgrade):
        # An old signed bundle replayed must not take a board back to a version with a
        # known fault: going back needs a bundle signed with "downgrade" (checked again on
        # the signed manifest after the download; the offer's own flag is not signed).
        if not downgrade and not P.newer(version, self.u.fw):
            raise Refused("not_newer", "%s is not newer than %s" % (version, self.u.fw))

    def _compatible(self, roles, boards):
        if roles is not None and self.cfg["role"] not in roles:
            raise Refused("incompatible", "bundle is not for role " + self.cfg["role"])
        board = self.cfg["board"].replace("-", "_")
        if boards is not None and board not in [b.replace("-", "_") for b in boards]:
            raise Refused("incompatible", "bundle is not for board " + self.cfg["board"])

    async def _fetch(self, offer, base):
        digest = self._check_offer(offer, base)
        size, chunk = offer["size"], offer["chunk"]
        n = (size + chunk - 1) // chunk
        h = hashlib.sha256()
        gc.collect()
        heap0 = peak = gc.mem_alloc()
        t0 = time.ticks_ms()
        with open(base + "/ota.bin", "wb") as f:
            for i in range(n):
                msg = await self._get(offer["id"], i)
                if msg["off"] != i * chunk:
                    raise Refused("bad_chunk", "chunk %d at offset %d" % (i, msg["off"]))
                data = binascii.a2b_base64(msg["data"])
                # A collect per chunk keeps a small heap from fragmenting, and measures what
                # the update holds live at its fullest: the chunk as JSON and as bytes.
                gc.collect()
                a = gc.mem_alloc()
                if a > peak:
                    peak = a
                msg = None
                want = chunk if i < n - 1 else size - i * chunk
                if len(data) != want:
                    raise Refused("bad_chunk", "chunk %d has %d bytes" % (i, len(data)))
                h.update(data)
                f.write(data)
                del data
        if h.digest() != digest:
            raise Refused("bad_hash", "bundle sha256 differs from the signed one")
        return {"chunks": n, "ms": time.ticks_diff(time.ticks_ms(), t0), "heap_base": heap0,
                "heap_peak": peak}

    async def _get(self, oid, i):
        u = self.u
        slot = u.slot
        for _ in range(_TRIES):
            slot[1] = None
            slot[0].clear()
            u.want = i
            try:
                # A dead link holds the PUBACK (owmqtt resends on reconnect): bounded here,
                # so a long outage ends in "timeout" rather than a fetch that never ends.
                await asyncio.wait_for_ms(self._send("get", oid, i=i), _CHUNK_WAIT_MS)
                await asyncio.wait_for_ms(slot[0].wait(), _CHUNK_WAIT_MS)
            except asyncio.TimeoutError:
                continue
            if u.cancel:
                raise Refused("cancelled", "the hub cancelled the update")
            if slot[1] is not None:
                msg = slot[1]
                slot[1] = None
                return msg
        raise Refused("timeout", "no chunk %d from the hub" % i)

    def _unpack(self, offer, base):
        """Staging file -> /next, every file checked against the (signed) manifest."""
        nxt = base + "/next"
        rmtree(nxt)
        os.mkdir(nxt)
        buf = bytearray(_COPY)
        with open(base + "/ota.bin", "rb") as f:
            head = f.read(8)
            if head[:4] != b"OWB1":
                raise Refused("bad_bundle", "not a OneWindow bundle")
            man = json.loads(f.read(int.from_bytes(head[4:], "big")))
            if man.get("version") != offer["version"]:
                raise Refused("bad_bundle", "manifest version differs from the offer")
            self._compatible(man.get("roles"), man.get("boards"))
            self._forward(man["version"], man.get("downgrade"))
            for ent in man["files"]:
                path, left = ent["p"], ent["n"]
                if not _safe(path):
                    raise Refused("bad_bundle", "bad path " + path)
                _makedirs(nxt, path)
                h = hashlib.sha256()
                with open(nxt + "/" + path, "wb") as out:
                    while left:
                        k = f.readinto(buf) if left >= _COPY else f.readinto(memoryview(buf)[:left])
                        if not k:
                            raise Refused("bad_bundle", "bundle ends inside " + path)
                        mv = memoryview(buf)[:k]
                        h.update(mv)
                        out.write(mv)
                        left -= k
                if binascii.hexlify(h.digest()).decode() != ent["h"]:
                    raise Refused("bad_bundle", "hash of " + path)
        with open(nxt + "/ow_version.py", "w") as out:
            out.write("FW = %s\n" % json.dumps(offer["version"]))
