"""Importable helpers for the tests and benchmarks: peers, configs, PKI, the Prometheus stack.

conftest.py holds fixtures only; everything a test or a benchmark imports lives here.
"""
