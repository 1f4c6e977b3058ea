"""tickguard.engine"""
