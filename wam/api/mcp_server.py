"""`wam mcp`: the fleet as MCP tools, so a language-model agent can drive robots through the API.

Every tool is a call through `wam.api.Client`, so the agent gets exactly the access its key
grants (scopes, robot patterns, leases) and every episode it runs is recorded like any other.
"""

from __future__ import annotations

from typing import Any

from wam.api.client import ApiError, Client

LEASE_S = 300.0


def build_server(url: str | None = None, key: str | None = None, client: Client | None = None):
    from mcp.server.mcpserver import MCPServer

    api = client or Client(url, key)
    server = MCPServer("wam", instructions="Drive a fleet of robots: list them, reset one with a task, observe it, "
                                            "send actions, or run a task with a policy on several robots at once.")

    def guarded(call, *args, **kwargs) -> dict[str, Any]:
        try:
            return {"ok": True, "result": call(*args, **kwargs)}
        except ApiError as error:
            return {"ok": False, "status": error.status, "error": error.detail}

    @server.tool()
    def list_robots() -> dict[str, Any]:
        """Every robot this key can see: id, env, task, status, whether it is leased or stopped."""
        return guarded(api.robots)

    @server.tool()
    def describe_robot(robot_id: str) -> dict[str, Any]:
        """One robot: its action size and bounds, state size and names, cameras, fps and status. Read it before
        acting on a robot you have not used: robots differ (a simulated arm, a real 6-joint arm)."""
        return guarded(api.robot, robot_id)

    @server.tool()
    def observe(robot_id: str) -> dict[str, Any]:
        """The robot's latest observation: its state, reward, success, episode step."""
        return guarded(api.observation, robot_id)

    @server.tool()
    def reset_robot(robot_id: str, task: str | None = None, seed: int | None = None) -> dict[str, Any]:
        """Lease the robot and start a new episode, optionally with a task: a Meta-World task name for a simulated arm
        (e.g. 'drawer-open-v3'), any instruction for a real robot (it is recorded with the episode)."""
        leased = guarded(api.lease, robot_id, LEASE_S)
        return leased if not leased["ok"] else guarded(api.reset, robot_id, task, seed)

    @server.tool()
    def act(robot_id: str, actions: list[list[float]]) -> dict[str, Any]:
        """Send one or more actions, executed in order; each has the robot's action size, within its bounds
        (describe_robot). The robot is leased for you."""
        leased = guarded(api.lease, robot_id, LEASE_S)
        return leased if not leased["ok"] else guarded(api.step, robot_id, actions=actions)

    @server.tool()
    def run_task(task: str, policy: str = "expert", robots: int = 1, episodes: int = 1) -> dict[str, Any]:
        """Run a task autonomously with a policy on N robots for M episodes. The policy is 'expert' (Meta-World tasks
        only), 'random' or the name of a finetuned WAM run in the server's runs directory (e.g. 'wam-reach'); other
        paths are refused."""
        return guarded(api.run_task, task, policy, robots, episodes)

    @server.tool()
    def task_status(run_id: str) -> dict[str, Any]:
        """Progress of a task run: episodes done, successes, status."""
        return guarded(api.task, run_id)

    @server.tool()
    def list_episodes(robot: str | None = None, run_id: str | None = None, limit: int = 20) -> dict[str, Any]:
        """Recorded episodes (newest data for training): id, robot, task, success, length."""
        return guarded(api.episodes, robot=robot, run_id=run_id, limit=limit)

    return server
