"""The installed distribution's version and home page, read once from its metadata."""

from __future__ import annotations

import importlib.metadata as _metadata

__all__ = ["__version__", "home_page"]

try:  # one version, pyproject.toml's
    __version__ = _metadata.version("slipstream")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def home_page() -> str | None:
    """The project's home page from the installed package's metadata, if it names one."""
    try:
        meta = _metadata.metadata("slipstream")
    except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return None
    urls = [e.partition(",")[2].strip() for e in meta.get_all("Project-URL") or []]
    urls += [str(u) for u in meta.get_all("Home-page") or []]
    return next((u for u in urls if u.startswith(("https://", "http://"))), None)
