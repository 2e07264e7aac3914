"""Tests of the examples in examples/: each one runs as a host would run it."""
