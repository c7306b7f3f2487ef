"""Serving models over HTTP and in batch; load tests that gate a release on latency and throughput."""
