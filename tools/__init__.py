"""Benchmarks, generators and fixtures for developers; `scripts/` holds their thin launchers."""
