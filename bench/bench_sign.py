"""Placeholder until the benchmark lands: prints nothing measured."""

raise SystemExit("benchmark not written yet")
