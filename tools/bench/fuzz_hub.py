"""Fuzzing the hub's input: no message may end the hub, break a promise or change the journal.

Two kinds, each printing a table:

    python -m onewindow.tools.bench.fuzz_hub --process 20000   # the real hub, real Mosquitto
    python -m onewindow.tools.bench.fuzz_hub --atheris 200000  # coverage-guided, decode + handle

`--process N` starts a private Mosquitto and `onewindow hub` (tools/testkit/testbed.py) and
publishes N bad messages on device topics: random bytes, truncations, huge and deep payloads,
a wrong type or an out-of-range value in every field, unknown devices, items and windows,
replays, seq 2^63, NaN. Every 100 messages a registered box takes a real ticket. It checks
the process is alive, each take is answered (and how fast), and the journal holds nothing but
those takes.

`--atheris RUNS` runs libFuzzer (atheris) over `ow_protocol.decode` and `HubApp.handle` in one
process with a real SQLite journal, starting from the protocol's golden vectors. A crash is an
exception out of decode other than ProtocolError, any failure `handle` had to catch
(`err internal`: a bug), a record the journal refuses, or a state change without a record.

The imports of the hub happen inside the functions: atheris must instrument them as they load.

Why one module of 442 lines: it is one command with one promise and one table
(docs/benchmarks.md, through bench_report): the real-process run and the atheris run differ in
how they make input, not in what they judge; the atheris child is this module run again
(`--atheris-child`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CENTRE = "fz"
ITEM = "SOC-001"  # in the sample catalog the hub loads by default
PROBE_EVERY = 100
HERE = Path(__file__).resolve().parent
VECTORS = HERE.parents[1] / "protocol" / "vectors"

# Values that break a field's type or bounds (protocol/README.md, 3): a field gets one of these.
WRONG = [None, True, False, 0, -1, 1.5, 1.0, 2**53, 2**63, 2**64, -(2**63), 1e300, "", "x" * 300,
         "x" * 5000, [], [1, 2], ["x"] * 40, {}, {"a": {"b": [1]}}, "\u0000", "A017/#"]
EVENT_TYPES = ["take", "call", "recall", "skip", "start", "complete", "pause", "resume", "open",
               "close", "transfer", "reprint", "help", "rate", "scan", "card"]
KINDS = ["random bytes", "truncated", "too large", "huge field", "deep", "wrong field",
         "missing field", "unknown device", "unknown item", "wrong window", "replay",
         "seq 2^63", "NaN", "dev mismatch", "bad topic id", "bad status", "bad ack", "v"]


def _event(dev: str, seq: int, typ: str) -> dict[str, Any]:
    """A well-formed event of this type (what the mutations start from)."""
    extra: dict[str, Any] = {
        "take": {"item": ITEM, "items": ["MED-002"], "priority": "normal"},
        "transfer": {"to_window": 2, "note": "n"}, "reprint": {"ticket": "A001"},
        "rate": {"ticket": "A001", "score": 1}, "scan": {"ticket": "A001"},
        "card": {"resident": "9f2c1a7be04d55aa"}, "skip": {"requeue": True},
        "open": {"clerk": "gh-1"},
    }.get(typ, {})
    msg: dict[str, Any] = {"v": 1, "dev": dev, "seq": seq, "type": typ, "ts": 1795395600.5,
                           **extra}
    if typ != "take" and typ != "reprint":
        msg["window"] = 1
    return msg


def _dumps(msg: Any) -> bytes:
    return json.dumps(msg).encode()


class BadMessages:
    """Deterministic bad messages for the centre CENTRE: (kind, topic, payload). None of
    them may change the journal: each breaks the contract or is refused by the hub."""

    def __init__(self, seed: int, box: str = "box-1", keypad: str = "kp-1") -> None:
        from ...protocol import ow_protocol as proto

        self.proto = proto
        self.rng = random.Random(seed)
        self.box, self.keypad = box, keypad
        self.seq = 1000  # above anything a device has used: refusals must not be "replayed"

    def topic(self, dev: str, leaf: str = "evt") -> str:
        return f"ow/{CENTRE}/dev/{dev}/{leaf}"

    def __iter__(self) -> Iterator[tuple[str, str, bytes]]:
        while True:
            kind = self.rng.choice(KINDS)
            yield kind, *self.make(kind)

    def _invalid(self, msg: dict[str, Any], kind: str = "evt") -> bool:
        try:
            self.proto.validate(kind, msg)
        except self.proto.ProtocolError:
            return True
        return False

    def make(self, kind: str) -> tuple[str, bytes]:  # one branch per kind
        rng, box = self.rng, self.box
        self.seq += 1
        good = _event(box, self.seq, "take")
        if kind == "random bytes":
            return self.topic(rng.choice([box, self.keypad])), rng.randbytes(
                rng.choice([0, 1, 7, 100, 1000, 4000]))
        if kind == "truncated":
            raw = _dumps(_event(rng.choice([box, self.keypad]), self.seq,
                                rng.choice(EVENT_TYPES)))
            return self.topic(box), raw[:rng.randrange(0, len(raw))]
        if kind == "too large":
            return self.topic(box), _dumps({**good, "pad": "x" * 66000})
        if kind == "huge field":
            return self.topic(box), _dumps({**good, "item": "x" * rng.choice([257, 60000])})
        if kind == "deep":
            n = rng.choice([9, 50, 1000, 20000])
            opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
            inner = opener * n + ("1" if opener != "[" else "") + closer * n
            if rng.random() < 0.3:
                return self.topic(box), inner.encode()
            return self.topic(box), _dumps(good)[:-1] + b', "x": ' + inner.encode() + b"}"
        if kind == "wrong field" or kind == "missing field":
            dev = rng.choice([box, self.keypad])
            msg = _event(dev, self.seq, rng.choice(EVENT_TYPES))
            for _ in range(20):
                name = rng.choice(sorted(msg))
                bad = dict(msg)
                if kind == "missing field":
                    del bad[name]
                else:
                    bad[name] = rng.choice(WRONG)
                if self._invalid(bad):
                    return self.topic(dev), _dumps(bad)
            return self.topic(dev), _dumps({**msg, "seq": -1})
        if kind == "unknown device":
            ghost = f"ghost-{rng.randrange(100)}"
            return self.topic(ghost), _dumps(_event(ghost, self.seq, "take"))
        if kind == "unknown item":
            return self.topic(box), _dumps({**good, "item": f"NOPE-{rng.randrange(1000)}"})
        if kind == "wrong window":
            msg = _event(self.keypad, self.seq, rng.choice(["call", "open", "pause"]))
            msg["window"] = rng.choice([2, 7, 9999])
            return self.topic(self.keypad), _dumps(msg)
        if kind == "replay":
            # box-1's first take is seq 10 (fuzz_process): at or below it, a repeat or replay
            return self.topic(box), _dumps(_event(box, rng.randrange(1, 11), "take"))
        if kind == "seq 2^63":
            return self.topic(box), _dumps({**good, "seq": rng.choice([2**63, 2**64, 2**53])})
        if kind == "NaN":
            raw = _dumps(good)[:-1] + b', "ts": ' + rng.choice(
                [b"NaN", b"Infinity", b"-Infinity", b"1e999"]) + b"}"
            return self.topic(box), raw.replace(b'"ts": 1795395600.5, ', b"")
        if kind == "dev mismatch":
            return self.topic(box), _dumps({**good, "dev": self.keypad})
        if kind == "bad topic id":
            dev = rng.choice(["BOX-1", "a" * 40, "box 1", "盒子"])
            return self.topic(dev), _dumps({**good, "dev": dev})
        if kind == "bad status":
            status = {"v": 1, "dev": box, "state": "ready", "role": "box", "seq": 1,
                      "alerts": [], "uptime": 5, "rssi": -60}
            for _ in range(20):
                bad = {**status, rng.choice(sorted(status)): rng.choice(WRONG)}
                if self._invalid(bad, "status"):
                    return self.topic(box, "status"), _dumps(bad)
            return self.topic(box, "status"), b"{"
        if kind == "bad ack":
            ack = {"v": 1, "dev": box, "id": "1.0", "ok": False, "code": "paper_out"}
            bad = {**ack, rng.choice(sorted(ack)): rng.choice(WRONG[:12])}
            if not self._invalid(bad, "ack"):
                bad["ok"] = "no"
            return self.topic(box, "ack"), _dumps(bad)
        return self.topic(box), _dumps({**good, "v": rng.choice([True, 1.0, "1", 2, None])})


def _device_rows(db: Path, exclude: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select pos, dev, seq, body from journal where dev is not null "
                            "and dev != ? order by pos", (exclude,)).fetchall()


async def fuzz_process(n: int, seed: int, workdir: Path) -> dict[str, Any]:
    """N bad messages at the real hub over a real Mosquitto; a probe take every PROBE_EVERY."""
    import aiomqtt

    from ..simdevice import SimDevice
    from ..testkit.testbed import HubProcess, Mosquitto, default_devices, write_config

    db = workdir / "hub.db"
    devices = [*default_devices(2), {"id": "probe-1", "role": "box"}]
    with Mosquitto(workdir / "broker") as broker:
        cfg = write_config(workdir / "centre.toml", CENTRE, broker.port, db, windows=2,
                           devices=devices)
        hub = HubProcess(cfg, workdir / "hub.log").start()
        try:
            return await _fuzz_hub(hub, broker.port, db, n, seed, aiomqtt, SimDevice)
        finally:
            hub.stop()


async def _fuzz_hub(hub: Any, port: int, db: Path, n: int, seed: int, aiomqtt: Any,
                    sim: Any) -> dict[str, Any]:
    from ...hub.mqtt.broker import NO_DELAY

    async with aiomqtt.Client("127.0.0.1", port) as watch:
        await watch.subscribe(f"ow/{CENTRE}/hub/status", qos=1)
        async with asyncio.timeout(30):
            async for m in watch.messages:
                if json.loads(m.payload)["state"] == "ready":
                    break
    kinds: Counter[str] = Counter()
    latencies: list[float] = []
    errs: Counter[str] = Counter()
    # TCP_NODELAY on the fuzzer as on every client of ours (hub/mqtt/broker.py): without it
    # each QoS 1 publish waited out Nagle behind the fuzzer's own PUBACK of the hub's last
    # err answer until the broker's delayed ACK (40 ms), 8-18 ms per message on average.
    async with sim(CENTRE, "probe-1", "box", "127.0.0.1", port) as probe, \
            sim(CENTRE, "box-1", "box", "127.0.0.1", port, seq=9) as box, \
            aiomqtt.Client("127.0.0.1", port, socket_options=NO_DELAY) as fuzzer:
        await box.send("take", item=ITEM)  # so replays of box-1 are replays
        await fuzzer.subscribe(f"ow/{CENTRE}/dev/+/err", qos=1)
        counter = asyncio.create_task(_count_errs(fuzzer, errs))
        before = _device_rows(db, "probe-1")
        started = time.perf_counter()
        messages = iter(BadMessages(seed))
        try:
            for i in range(n):
                kind, topic, payload = next(messages)
                kinds[kind] += 1
                await fuzzer.publish(topic, payload, qos=1)
                if i % PROBE_EVERY == PROBE_EVERY - 1:
                    latencies.append(await _probe(probe, hub))
            last_probe = time.time()  # every bad message was acknowledged by the broker
            latencies.append(await _probe(probe, hub))
            took = time.perf_counter() - started
        finally:
            counter.cancel()
        after = _device_rows(db, "probe-1")
        failures = await _fleet_failures(port, last_probe)
    return {"messages": n, "seconds": took, "rate": n / took, "kinds": dict(kinds),
            "errs": sum(errs.values()), "err_codes": dict(errs), "alive": hub.proc.poll() is None,
            "probes": len(latencies), "probe_max_s": max(latencies),
            "probe_median_s": sorted(latencies)[len(latencies) // 2],
            "journal_unchanged": after == before, "failures": failures,
            "new_records": [r for r in after if r not in before][:5]}


async def _fleet_failures(port: int, since: float) -> dict[str, int]:
    """The hub's own count of dropped messages, from its retained fleet summary (the probe's
    last take changes the summary, so one made after it comes within a second)."""
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe(f"ow/{CENTRE}/hub/fleet", qos=1)
        async with asyncio.timeout(10):
            async for m in sub.messages:
                summary = json.loads(m.payload)
                if summary["ts"] >= since:
                    return dict(summary["failures"])
    raise AssertionError("unreachable")


async def _count_errs(client: Any, errs: Counter[str]) -> None:
    async for m in client.messages:
        try:
            errs[json.loads(m.payload)["code"]] += 1
        except (ValueError, KeyError, TypeError):
            errs["?"] += 1


async def _probe(probe: Any, hub: Any) -> float:
    if hub.proc.poll() is not None:
        raise RuntimeError(f"the hub exited with {hub.proc.returncode}")
    t = time.perf_counter()
    res = await probe.send("take", item=ITEM, timeout=10)
    if "ticket" not in res:
        raise RuntimeError(f"the probe take was not answered with a ticket: {res}")
    return time.perf_counter() - t


# ---- atheris ------------------------------------------------------------------------------

LEAVES = ("evt", "status", "ack", "cmd")
DEVS = ("box-1", "kp-1", "ghost-1", "BOX!")


def _seed_corpus(folder: Path) -> None:
    """The golden vectors, each behind the two bytes that pick its leaf and device."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("valid.json", "invalid.json"):
        for i, case in enumerate(json.loads((VECTORS / name).read_text(encoding="utf-8"))):
            if case["kind"] not in LEAVES or ("message" not in case and "payload" not in case):
                continue
            payload = (case["payload"].encode() if "payload" in case
                       else _dumps(case["message"]))
            leaf = LEAVES.index(case["kind"])
            (folder / f"{name[:-5]}-{i}").write_bytes(bytes([leaf, i % 2]) + payload)


def atheris_child(runs: int, seed: int, corpus: Path) -> None:
    """The libFuzzer process (`--atheris-child`): exits non-zero on the first crash."""
    import gc
    import logging
    import types

    import atheris

    from ...hub import config as hub_config
    from ...hub.runner import build_app
    from ...hub.store.journal import Journal
    from ...protocol import ow_protocol as proto
    from ..testkit.testbed import default_devices, write_config

    # Coverage of our own code only (the editable install's importer hides it from
    # atheris.instrument_imports, and instrument_all takes minutes over every library).
    for obj in gc.get_objects():
        if (isinstance(obj, types.FunctionType)
                and str(getattr(obj, "__module__", "")).startswith("onewindow.")):
            atheris.instrument_func(obj)

    # libFuzzer ends this process with _exit: nothing here could clean up. The parent runs it
    # in its own temporary directory (`fuzz_atheris`), which goes with the parent.
    work = Path.cwd() / "hub"
    work.mkdir()
    cfg = write_config(work / "centre.toml", CENTRE, None, work / "hub.db", windows=2,
                       devices=default_devices(2))
    journal = Journal(f"sqlite:///{work / 'hub.db'}")
    app = build_app(hub_config.load(cfg), journal)

    caught: list[Any] = []

    class Keep(logging.Handler):  # the failure `handle` caught, to re-raise it as the crash
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                caught.append(record.exc_info)

    logging.getLogger().handlers[:] = [Keep(logging.ERROR)]
    logging.getLogger().setLevel(logging.ERROR)
    now = [1795395600.0]

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        leaf, dev = LEAVES[data[0] % len(LEAVES)], DEVS[data[1] % len(DEVS)]
        payload = data[2:]
        with contextlib.suppress(proto.ProtocolError):
            proto.decode(leaf, payload)
        state, internal = app.centre.to_dict(), app.fleet.failures["internal"]
        now[0] += 1.0
        step = app.handle(f"ow/{CENTRE}/dev/{dev}/{leaf}", payload, now[0])
        if app.fleet.failures["internal"] != internal:
            raise caught[-1][1]
        journal.append(step.records)  # the real SQLite insert: 2^63 once ended the hub here
        if not step.records and app.centre.to_dict() != state:
            raise AssertionError("the state changed without a journal record")

    _seed_corpus(corpus)
    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-seed={seed}", "-max_len=70000",
                   "-rss_limit_mb=4096", str(corpus)], one_input)
    atheris.Fuzz()


def fuzz_atheris(runs: int, seed: int) -> dict[str, Any]:
    """Runs `atheris_child` in its own process and reads libFuzzer's summary."""
    with tempfile.TemporaryDirectory(prefix="ow-atheris-") as tmp:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "onewindow.tools.bench.fuzz_hub",
                              "--atheris-child", str(runs), "--seed", str(seed),
                              "--corpus", str(Path(tmp) / "corpus")],
                             capture_output=True, text=True, cwd=tmp, timeout=max(600, runs))
        took = time.perf_counter() - started
    log = out.stderr
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)", log)
    stats = re.findall(r"#\d+.*?exec/s: (\d+)", log)
    execs = int(done[-1][0]) if done else None
    return {"runs": execs, "seconds": took,
            "exec_s": int(stats[-1]) if stats else None,
            "coverage": int(done[-1][1]) if done else None,
            "features": int(done[-1][2]) if done else None,
            "corpus": int(done[-1][3]) if done else None,
            "crashes": 0 if out.returncode == 0 else 1, "returncode": out.returncode,
            "log": log[-4000:] if out.returncode else ""}


def _table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k.ljust(width)} | {v} |" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--process", type=int, metavar="N", help="bad messages at a real hub")
    ap.add_argument("--atheris", type=int, metavar="RUNS", help="coverage-guided runs")
    ap.add_argument("--atheris-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.atheris_child is not None:
        atheris_child(args.atheris_child, args.seed, args.corpus)
        return
    if not args.process and not args.atheris:
        ap.error("give --process N and/or --atheris RUNS")
    failed = False
    if args.process:
        with tempfile.TemporaryDirectory(prefix="ow-fuzz-") as tmp:
            r = asyncio.run(fuzz_process(args.process, args.seed, Path(tmp)))
        print(f"## The real hub process over Mosquitto (seed {args.seed})\n")
        print(_table([
            ("messages", r["messages"]), ("seconds", f"{r['seconds']:.1f}"),
            ("messages/s", f"{r['rate']:.0f}"), ("err answers", r["errs"]),
            ("hub alive", r["alive"]), ("journal unchanged", r["journal_unchanged"]),
            ("dropped: protocol / internal (hub's count)",
             f"{r['failures']['protocol']} / {r['failures']['internal']}"),
            ("probe takes answered", r["probes"]),
            ("probe median / max (ms)",
             f"{r['probe_median_s'] * 1000:.1f} / {r['probe_max_s'] * 1000:.1f}"),
        ]))
        print("\nby kind: " + ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items())))
        print("err codes: " + ", ".join(f"{k} {v}" for k, v in sorted(r["err_codes"].items())))
        if not r["journal_unchanged"]:
            print(f"records the bad messages made: {r['new_records']}", file=sys.stderr)
        failed |= not (r["alive"] and r["journal_unchanged"]) or r["failures"]["internal"] > 0
    if args.atheris:
        r = fuzz_atheris(args.atheris, args.seed)
        print(f"\n## atheris: decode + handle in process (seed {args.seed})\n")
        print(_table([("runs", r["runs"]), ("seconds", f"{r['seconds']:.1f}"),
                      ("execs/s", r["exec_s"]), ("crashes", r["crashes"]),
                      ("coverage (edges)", r["coverage"]), ("features", r["features"]),
                      ("corpus", r["corpus"])]))
        if r["crashes"]:
            print(r["log"], file=sys.stderr)
        failed |= bool(r["crashes"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
