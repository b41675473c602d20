"""The agent's verbs (what `wam research mcp` serves), driven by a script as an agent would, and over stdio."""

from __future__ import annotations

import sys

import anyio
import pytest

from wam.research.mcp_tools import ResearchTools
from wam.research.runners import toy_knobs
from wam.research.spec import EvaluatorSpec, init_study

TOOLS = {"propose_experiment", "run_experiment", "experiment_status", "leaderboard", "keep", "revert"}


@pytest.fixture
def study(tmp_path):
    return init_study(tmp_path / "study", EvaluatorSpec("toy", budget={"trials": 10}, baseline_repeats=3, seeds=(5,),
                                                        holdout_seeds=(6,)), toy_knobs())


def test_a_scripted_agent_proposes_runs_keeps_and_reverts(study):
    tools = ResearchTools(study)
    refused = tools.propose_experiment({"seeds": [1, 2]})
    assert not refused["ok"] and "belongs to the evaluator" in refused["error"]
    assert tools.run_experiment() == {"ok": False, "error": "nothing queued: propose_experiment first"}
    assert tools.propose_experiment({"x": 0.7, "lr": 0.001})["ok"]
    ran = tools.run_experiment()
    assert ran["ok"] and ran["trial"] == 1 and ran["decision"]["kept"]
    assert ran["decision"]["holdout"] in ("pass", "fail")
    assert all("holdout" not in run for run in ran["runs"])  # the holdout's score never reaches the agent
    assert tools.propose_experiment({"x": -1.0})["ok"]
    second = tools.run_experiment()
    assert not second["decision"]["kept"] and second["decision"]["reason"] == "below the noise floor"
    board = tools.leaderboard()
    assert board["incumbent"] == 1 and board["rejected"] == 1 and board["trials"][0]["trial"] == 1
    assert tools.keep(2) == {"ok": True, "kept": False, "reason": "below the noise floor"}
    assert tools.revert(1)["incumbent"] == 0
    assert tools.experiment_status(1)["decision"]["kept"] is False
    assert not tools.revert(2)["ok"] and not tools.experiment_status(99)["ok"]


@pytest.mark.slow
def test_the_tools_are_served_over_stdio(study):
    from mcp import ClientSession, StdioServerParameters, stdio_client

    server = StdioServerParameters(command=sys.executable, args=["-m", "wam.cli", "research", "mcp", str(study)])

    async def main():
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                proposed = (await session.call_tool("propose_experiment", {"changes": {"x": 0.3}})).structured_content
                ran = (await session.call_tool("run_experiment", {})).structured_content
                return names, proposed, ran

    names, proposed, ran = anyio.run(main)
    assert TOOLS <= names
    assert proposed["ok"] and ran["ok"] and ran["trial"] == 1
