"""The stress scenarios shipped with tickguard: TOML files, data only (risk/stress/library.py
reads them)."""

__all__: list[str] = []
