"""Benchmarks that print figures: `crm bench BENCHMARK`; development tooling, not in the image."""
