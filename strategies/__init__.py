"""tickguard.strategies"""
