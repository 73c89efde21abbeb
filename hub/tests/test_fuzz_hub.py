"""Fuzzing in the suite, short: thousands of bad messages at the real hub process over a real
Mosquitto, and a coverage-guided (atheris) run of decode + handle. The long runs and their
figures: `python -m onewindow.tools.bench.fuzz_hub --process 20000 --atheris 200000`, results in
docs/benchmarks.md ("Fuzzing")."""

import subprocess
import sys

from onewindow.tools.bench import fuzz_hub


async def test_the_real_hub_lives_through_thousands_of_bad_messages(tmp_path):
    r = await fuzz_hub.fuzz_process(3000, seed=11, workdir=tmp_path)
    assert r["alive"], "the hub process exited"
    assert r["journal_unchanged"], f"bad messages made records: {r['new_records']}"
    assert r["failures"]["internal"] == 0, "the hub failed inside on some message: see its log"
    assert r["failures"]["protocol"] > 1000  # the hub's own count, from its fleet summary
    assert set(r["kinds"]) == set(fuzz_hub.KINDS)
    assert r["probes"] == 3000 // fuzz_hub.PROBE_EVERY + 1  # every valid take was answered
    # A valid take is still answered promptly between the bad messages (the only timing
    # bound here, generous: the brief's 1 s; the medians are in docs/benchmarks.md).
    assert r["probe_max_s"] < 1.0, r
    for code in ("too_deep", "too_large", "malformed", "bad_field", "version", "replayed",
                 "unknown_device", "unknown_item", "wrong_window", "dev_mismatch"):
        assert r["err_codes"].get(code), f"no {code} answered: {r['err_codes']}"


def test_atheris_finds_no_crash_in_decode_and_handle():
    out = subprocess.run([sys.executable, "-m", "onewindow.tools.bench.fuzz_hub",
                          "--atheris", "3000", "--seed", "5"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in out.stdout.splitlines() if line.startswith("| ")]
    table = dict(rows)
    assert table["crashes"] == "0" and int(table["runs"]) >= 3000
    assert int(table["coverage (edges)"]) > 300  # our code is instrumented, not just json
