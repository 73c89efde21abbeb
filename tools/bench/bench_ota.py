"""OTA benchmark (stage 6): one LED board updated over MQTT on the MicroPython unix port.

    python -m onewindow.tools.bench.bench_ota              # 5 updates
    python -m onewindow.tools.bench.bench_ota --runs 3

Real Mosquitto, the hub process, the board running a compiled image (tools/firmware.py
build) from its own "flash" folder, the rollout (hub/ota) in this process. Per run: a new
version is offered; measured are the bundle size, the download (first chunk request to
verified, on the board's clock), offer to healthy (the board's birth says the new version,
"ota": "ok"; includes the reset, the boot and the board's stable period), and the board's
heap during the download: live bytes (gc.mem_alloc() after a collect, taken with each
chunk in hand as JSON and as bytes), the largest of the run against the same just before
its first chunk request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ...hub.config import BrokerURL
from ...hub.ota.bundle import build_bundle, keygen, load_private_key, public_key_for_config, sign
from ...hub.ota.mqtt import OtaServer
from ...hub.ota.rollout import Rollout
from ..firmware import build
from ..testkit.fwsim import FirmwareProcess
from ..testkit.testbed import HubProcess, Mosquitto, write_config

STABLE_S = 1.0  # the board's ota_stable_s: part of offer-to-healthy


async def run(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        build("sim", tmp / "image")
        key = tmp / "ota_key.pem"
        keygen(key)
        broker = Mosquitto(tmp / "broker").start()
        hub = HubProcess(write_config(tmp / "centre.toml", "bench", broker.port,
                                      tmp / "hub.db", windows=1), tmp / "hub.log").start()
        led = FirmwareProcess({"centre": "bench", "dev": "led-1", "role": "led", "window": 1,
                               "broker": {"host": "127.0.0.1", "port": broker.port},
                               "ota_pubkey": public_key_for_config(key),
                               "ota_stable_s": STABLE_S, "ota_trial_s": 60},
                              tmp / "led-1", image=tmp / "image")
        out: dict[str, Any] = {"download_ms": [], "healthy_s": [], "peak": [], "base": [],
                               "boot": []}
        try:
            await led.start()
            await led.wait("hub", lambda e: e["state"] == "ready", timeout=15)
            for i in range(runs):
                version = f"9.{i}.0"
                m = led.mark()
                await led.ctl("heap")  # collect, then report
                out["boot"].append((await led.wait("heap", since=m))["alloc"])
                bundle = build_bundle(tmp / "image", version, ["led"])
                sig = sign(bundle, load_private_key(key))
                ro = Rollout(version, ["led-1"], boards=bundle.manifest["boards"], timeout=60)
                server = OtaServer(BrokerURL("127.0.0.1", broker.port), "bench", ro, bundle,
                                   sig)
                t0 = time.monotonic()
                await server.run(settle=0.3, tick=0.05)
                if ro.status != "done":
                    raise RuntimeError(f"run {i}: {ro.reason}")
                offered = next(t for t, _, what in ro.log if what.startswith("offered"))
                healthy = next(t for t, _, what in ro.log if what == "healthy")
                staged = led.find("ota", lambda e, v=version: e.get("state") == "staged"
                                  and e["version"] == v)
                assert staged is not None
                out["size"] = len(bundle.data)
                out["chunks"] = staged["chunks"]
                out["download_ms"].append(staged["ms"])
                out["healthy_s"].append(healthy - offered)
                out["peak"].append(staged["heap_peak"])
                out["base"].append(staged["heap_base"])
                out["wall_s"] = time.monotonic() - t0
        finally:
            await led.stop()
            hub.stop()
            broker.stop()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    r = asyncio.run(run(args.runs))
    med = statistics.median
    print(f"bundle: {r['size']:,} bytes in {r['chunks']} chunks of 2,048 bytes")
    print(f"download (board clock), median of {args.runs}: {med(r['download_ms']):.0f} ms "
          f"(max {max(r['download_ms'])} ms)")
    print(f"offer -> healthy birth (incl. reset, boot, {STABLE_S:g} s stable): "
          f"median {med(r['healthy_s']):.2f} s (max {max(r['healthy_s']):.2f} s)")
    extra = [p - b for p, b in zip(r["peak"], r["base"], strict=True)]
    print(f"heap (live, after collect; unix port, 64-bit): {med(r['boot']):,.0f} bytes after "
          f"boot; during the download {max(r['peak']):,} at most, {max(extra):,} above its "
          f"start")


if __name__ == "__main__":
    main()
