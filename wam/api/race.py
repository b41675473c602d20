"""Run a connection's loops side by side until the first one ends, then stop the rest (WebSocket routes)."""

from __future__ import annotations

import asyncio
from typing import Awaitable


async def until_first(*loops: Awaitable) -> None:
    """Await the first of `loops` to finish; the others are cancelled and awaited, so nothing outlives the call."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
