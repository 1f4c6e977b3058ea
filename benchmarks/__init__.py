"""tickguard.benchmarks"""
