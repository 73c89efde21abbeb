"""Notice latency through the SMS channel (issue 16).

    python -m onewindow.tools.bench.bench_notify              # 300 short + 100 long notices
    python -m onewindow.tools.bench.bench_notify --short 1000 --long 200 --concurrency 8

The channel (hub/notify/smpp.py) bound to the SMPP stand-in (tools/testkit/smppd.py, the
real PDUs on loopback; no real gateway here) in this process. Per notice: from `send()`
to the stand-in holding the whole message (all parts joined), and to the channel's
`Sent` (the last submit_sm_resp read). A short notice is one SMS ("called"), a long one
three concatenated UCS-2 parts. `--concurrency` notices are in flight at once. What the
figure leaves out: a real gateway's and the carrier's own delay, which dominate in a
centre and are not ours to measure.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ...hub.core.measures import percentile
from ...hub.notify.channel import Notice, Sent, Texts, notice_id
from ...hub.notify.phones import PhoneVault, parse_phone
from ...hub.notify.smpp import SmppChannel, SmppConfig
from ...hub.notify.texts import compose
from ..testkit.smppd import SmppStandIn

LONG = ("【某街道社区事务受理服务中心】您的A017号快到了：前面还有3人，预计约12分钟，请回到大厅"
        "留意叫号。过号将顺延至队尾一次，再次过号需重新取号。办理时请携带身份证原件及相关材料，"
        "如需帮助请咨询大厅引导员。本中心工作日上午九点至下午五点对外办公，中午不休息；"
        "周六上午提供延时服务。感谢您的耐心等候，祝您办事顺利！")


async def run(short: int, long: int, concurrency: int) -> dict[str, Any]:
    vault = PhoneVault(b"bench-secret-32-bytes-long......", "bench")
    ref = vault.seal(parse_phone("13812345678"))
    async with SmppStandIn() as gateway:
        cfg = SmppConfig(host="127.0.0.1", port=gateway.port, system_id="onewindow",
                         password="secret", source_addr="10690001")
        async with SmppChannel(cfg, vault) as sms:
            await sms.send(Notice("warm-up", "W", "called",
                                  compose("called", ticket="W1", window=1), ref))
            results: dict[str, Any] = {}
            for label, count, words in (
                ("short (1 SMS)", short, lambda i: compose("called", ticket=f"A{i:03d}",
                                                           window=3)),
                ("long (3 SMS)", long, lambda i: Texts(*[f"{i:04d}{LONG}"] * 3)),
            ):
                to_gateway: list[float] = []
                to_sent: list[float] = []
                parts: set[int] = set()
                gate = asyncio.Semaphore(concurrency)

                async def one(i: int, label: str = label, words: Any = words,
                              to_gateway: list[float] = to_gateway,
                              to_sent: list[float] = to_sent, parts: set[int] = parts,
                              gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        texts = words(i)
                        ticket = f"{label[0]}{i}"
                        n = Notice(notice_id(ticket, "called"), ticket, "called", texts, ref)
                        t0 = time.perf_counter()
                        outcome = await sms.send(n)
                        t1 = time.perf_counter()
                        if not isinstance(outcome, Sent):
                            raise RuntimeError(f"notice {ticket}: {outcome}")
                        whole: list[Any] = []

                        def arrived(text: str = texts.zh_cn, whole: list[Any] = whole) -> bool:
                            whole[:] = [m for m in gateway.messages if m.text == text]
                            return bool(whole)

                        await gateway.wait_for(arrived)
                        to_sent.append((t1 - t0) * 1000)
                        to_gateway.append((whole[0].completed - t0) * 1000)
                        parts.add(whole[0].parts)

                await asyncio.gather(*(one(i) for i in range(count)))
                if len(parts) != 1 or f"({parts.pop()} SMS)" not in label:
                    raise RuntimeError(f"{label}: arrived in {sorted(parts)} parts")
                results[label] = {"n": count, "gateway": to_gateway, "sent": to_sent}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=300)
    ap.add_argument("--long", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    results = asyncio.run(run(args.short, args.long, args.concurrency))
    print(f"notice latency through the SMPP stand-in, concurrency {args.concurrency} (ms)")
    print(f"{'notice':<15} {'n':>5} {'to gateway p50':>15} {'p99':>8} {'to Sent p50':>12} "
          f"{'p99':>8}")
    for label, r in results.items():
        g50, g99 = percentile(r["gateway"], 50), percentile(r["gateway"], 99)
        s50, s99 = percentile(r["sent"], 50), percentile(r["sent"], 99)
        print(f"{label:<15} {r['n']:>5} {g50:>15.2f} {g99:>8.2f} {s50:>12.2f} {s99:>8.2f}")


if __name__ == "__main__":
    main()
