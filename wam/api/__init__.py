"""The Physical API: one agent drives many robots (simulated, dream, real) and every episode becomes data.

Server (`wam serve`), SDK (`wam.api.Client`, `wam.api.AsyncClient`), CLI (`wam robots ...`,
`wam tasks ...`, `wam keys ...`) and an MCP tool server (`wam mcp`) for language agents.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("Client", "AsyncClient", "ApiError"):
        from wam.api import client

        return getattr(client, name)
    raise AttributeError(name)
