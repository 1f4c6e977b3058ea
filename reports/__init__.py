"""tickguard.reports"""
