"""Benchmarks: ``make bench`` runs every ``bench_*.py`` module's ``main()``.

Each benchmark measures tunecheck and its reference side by side in one run and
prints the ratio, so numbers are comparable on any machine.
"""
