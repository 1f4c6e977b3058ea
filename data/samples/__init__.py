"""tickguard.data.samples"""
