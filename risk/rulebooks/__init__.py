"""The rulebooks shipped with tickguard: TOML files, data only (risk/rulebook.py reads them)."""

__all__: list[str] = []
