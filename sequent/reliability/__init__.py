"""Reliability suites: crashes, concurrency, mail and clock faults, bad input."""
