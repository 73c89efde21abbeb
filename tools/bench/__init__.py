"""Measurement: every run whose table `bench_report` copies into docs/benchmarks.md.

    python -m onewindow.tools.bench.bench_report --list

The timing benchmarks (`bench_*.py`), the forecast's accuracy (`eval_forecast`, with
`real_counts` for a real series), the fuzzing and fault runs (`fuzz_hub`, `fault_hub`) and
the 30-day soak (`soak`, its hub process `soakhub`). Each prints its own table; figures are
read here, never asserted in functional tests (the tests call some of these small, for
their behaviour). They run against the peers of `tools/testkit/`.
"""
