"""Benchmarks of the aggregator: corpus generation, polling, serving and database growth.

Not part of the package or of the test suite; `.ci/run` runs each script in `--smoke` mode
so they keep working. They must never send traffic anywhere but 127.0.0.1.
"""
