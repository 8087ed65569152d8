"""The installed library version, read from the distribution metadata (no import of ``lsr``)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def library_version() -> str:
    try:
        from importlib.metadata import version

        return version("lsr")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"
