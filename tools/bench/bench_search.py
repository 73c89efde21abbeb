"""Benchmark: the kiosk's search-as-you-type (hub/web/search.py) over the sample catalog.

    python -m onewindow.tools.bench.bench_search [--rounds 200]

Each query a resident might type (pinyin initials, full pinyin, Chinese, English, a prefix)
is run `rounds` times; prints p50 / p99 / max per query in ms. Budget: well under 20 ms a
query, so each keystroke's results come back before the next key.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ...hub.catalog import load_catalog
from ...hub.web.search import Search

QUERIES = ("yl", "yanglao", "养老", "pension", "sbk", "y", "社会保障卡", "ylbx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="runs of each query")
    args = parser.parse_args(argv)
    search = Search(load_catalog())
    print(f"kiosk search over the sample catalog, {args.rounds} runs a query (ms)\n")
    print(f"{'query':<12} {'results':>7} {'p50':>7} {'p99':>7} {'max':>7}")
    for q in QUERIES:
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            found = search.search(q)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        print(f"{q:<12} {len(found):>7} {statistics.median(times):>7.2f} {p99:>7.2f} "
              f"{times[-1]:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
