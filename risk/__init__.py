"""tickguard.risk"""
