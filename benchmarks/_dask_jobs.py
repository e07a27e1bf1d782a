"""Stage functions bench_pipeline sends to Dask workers (importable there by name)."""

from __future__ import annotations

from typing import Any

import slipstream as ss


class Client:
    """Stands in for an expensive client; the worker's registry counts its creations."""


async def setup() -> Client:
    return await ss.default_registry().get("client", Client)


async def label(n: int, client: Client) -> tuple[int, int]:
    return n, n % 7


def one(n: int) -> tuple[int, int]:
    """The same work as one Dask task per item (the naive way to use Dask)."""
    return n, n % 7


def touch(_: Any = None) -> int:
    return 0
