"""`wam mcp` over stdio, as a language-model agent would start it: tools listed, and called."""

from __future__ import annotations

import json
import os
import sys

import anyio
import pytest

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

TOOLS = {"list_robots", "describe_robot", "observe", "reset_robot", "act", "run_task", "task_status", "list_episodes"}


def test_mcp_tools_are_listed_and_drive_the_fleet(live):
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {**os.environ, "WAM_API_URL": live.url, "WAM_API_KEY": live.keys["control"]}
    server = StdioServerParameters(command=sys.executable, args=["-m", "wam.cli", "mcp"], env=env)

    async def main():
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                robots = (await session.call_tool("list_robots", {})).structured_content
                reset = (await session.call_tool("reset_robot", {"robot_id": "reach-v3-2", "seed": 2})).structured_content
                acted = (await session.call_tool("act", {"robot_id": "reach-v3-2", "actions": [[0.0, 0.2, 0.0, 0.0]] * 2})).structured_content
                seen = (await session.call_tool("observe", {"robot_id": "reach-v3-2"})).structured_content
                refused = (await session.call_tool("act", {"robot_id": "reach-v3-2", "actions": [[9.0, 0, 0, 0]]})).structured_content
                episodes = json.loads((await session.call_tool("list_episodes", {"limit": 5})).content[0].text)
                return tools, robots, reset, acted, seen, refused, episodes

    tools, robots, reset, acted, seen, refused, episodes = anyio.run(main)
    assert TOOLS <= tools
    assert robots["ok"] and "reach-v3-2" in [r["id"] for r in robots["result"]]
    assert reset["ok"] and reset["result"]["episode_step"] == 0
    assert acted["ok"] and acted["result"]["steps"] == 2 and seen["result"]["episode_step"] == 2
    assert not refused["ok"] and refused["status"] == 422 and "outside the action space" in refused["error"]
    assert episodes["ok"] and isinstance(episodes["result"], list)
