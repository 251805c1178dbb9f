"""Kordon's benchmarks. Run each from the repository root as a module, for example
``.venv/bin/python -m bench.ingest``: ``bench`` and the test harness (``testkit``) then
import as the packages they are, with no path tricks and nothing test-only installed."""
