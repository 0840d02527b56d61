"""Benchmarks: each writes JSON and a Markdown table under benchmarks/results/."""
