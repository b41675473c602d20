"""Every `wam` command meets bad input with one clear line: non-zero exit, no traceback, the option or value named.

One table walks the commands (a new command joins it). Each row runs in this process through typer's test
runner and is refused before any work, so the table takes seconds; the few rows after it check what a table
row cannot: a bad --out refused before an evaluation starts and results written first, a failed run leaving
nothing that blocks its retry, RL with one start and one rollout, the exit status of a failed task run,
and the /v1 that `wam serve` prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wam.cli import app

from tests.support.pretrain_fixtures import write_dataset

runner = CliRunner()
BOX = "│╭╮╰╯─"  # rich draws usage errors in a box and wraps them at the terminal's width


def squeezed(text: str) -> str:
    return "".join(c for c in text if not c.isspace() and c not in BOX)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, named: str, code: int | None = 2) -> None:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"crashed: {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert squeezed(named) in squeezed(result.output), f"{named!r} not named in:\n{result.output}"


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    """Things to point options at: a file, a dataset, action-free video, run directories of each kind (their
    marker files are all a path check reads), a run whose weights are damaged, an empty and a missing directory."""
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "file").write_text("not a directory")
    (root / "notadb").write_text("not a database")
    dataset = write_dataset(root / "dataset", [0], length=4)
    video = write_dataset(root / "video", [0], length=4, labelled=False)
    runs = {"pretrain": "pretrain.json", "finetune": "finetune.json"}
    for kind, marker in runs.items():
        (root / kind).mkdir()
        (root / kind / marker).write_text("{}")
    (root / "rl").mkdir()
    for marker in ("finetune.json", "rl.json"):
        (root / "rl" / marker).write_text("{}")
    damaged = root / "damaged" / "tokenizer" / "checkpoint"
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text(json.dumps({"kind": "tokenizer", "step": 1, "config": {}}))
    (damaged / "model.safetensors").write_bytes(b"\x10\x00")
    (root / "damaged" / "pretrain.json").write_text("{}")
    (root / "empty").mkdir()
    return {"root": root, "file": root / "file", "notadb": root / "notadb", "dataset": dataset, "video": video,
            "pretrain": root / "pretrain", "finetune": root / "finetune", "rl": root / "rl",
            "damaged": root / "damaged", "empty": root / "empty", "missing": root / "missing" / "dir"}


FLEET = "metaworld/reach-v3"
URL = "http://127.0.0.1:9"  # nothing listens: every row must be refused before it connects

# (command line, what the message must name); {name} is one of the `paths`, {new} a fresh directory in it.
TABLE = [
    # collect
    ("collect --tasks reach-v3 --episodes 0 --out {new}", "--episodes"),
    ("collect --tasks reach-v3 --episodes 1 --out {file}", "--out"),
    ("collect --tasks reach-v3 --episodes 1 --out {pretrain}", "is a pretraining run"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --workers 100000", "--workers"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --seed -1", "--seed"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --size 0", "size"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --max-steps 0", "max_steps"),
    ("collect --tasks teleport-v3 --episodes 1 --out {new}", "teleport-v3"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --policy {dataset}", "finetune.json"),
    ("collect --env hand --tasks juggle --episodes 1 --out {new}", "juggle"),
    ("collect --env hand/touch --episodes 1 --out {new} --embodiment human", "--no-actions"),
    ("collect --env hand/touch --episodes 1 --out {new} --embodiment alien", "alien"),
    ("collect --env hand/touch --episodes 1 --out {new} --cameras corner2", "corner2"),
    ("collect --tasks reach-v3 --episodes 1 --out {new} --embodiment human", "hand scenes"),
    # retarget
    ("retarget --data {dataset} --out {new}", "canonical hand track"),
    ("retarget --data {missing} --out {new}", "missing"),
    ("retarget --data {dataset} --out {file}", "--out"),
    ("retarget --data {dataset} --out {new} --hand allegro", "allegro"),
    ("retarget --data {dataset} --out {new} --iterations 0", "--iterations"),
    # data
    ("data filter {missing} --out {new} --success", "missing"),
    ("data filter {dataset} --out {file} --success", "--out"),
    ("data filter {dataset} --out {new} --task nothing-like-it", "no episode matches"),
    ("data info {file}", "info.json"),
    ("data info {pretrain}", "info.json"),
    ("data check {file}", "info.json"),
    ("data check {missing}", "{missing}"),
    ("data export {dataset} --episode 0 --out {file}/x.gif", "--out"),
    ("data export {dataset} --episode 0 --out {root}", "--out"),
    ("data export {dataset} --episode 0 --out {new}/x.gif --scale 0", "--scale"),
    ("data export {dataset} --episode 0 --out {new}/x.gif --scale 1000", "--scale"),
    ("data export {dataset} --episode 9 --out {new}/x.gif", "episode 9"),
    ("data convert {missing} --out {new}", "missing"),
    ("data convert {dataset} --out {new} --fps 0", "--fps"),
    ("data convert {dataset} --out {new} --format bogus", "bogus"),
    ("data import-ego bogus {dataset} --out {new}", "bogus"),
    ("data import-ego egodex {missing} --out {new}", "missing"),
    ("data import-ego egodex {dataset} --out {new} --size 1", "--size"),
    # pretrain
    ("pretrain --data {dataset} --out {file}", "--out"),
    ("pretrain --data {dataset} --out {dataset}", "is a dataset"),
    ("pretrain --data {dataset} --out {finetune} --resume", "is a finetuned WAM"),
    ("pretrain --data {dataset} --out {empty} --resume", "--resume"),
    ("pretrain --data {dataset} --out {new} --steps 0", "--steps"),
    ("pretrain --data {dataset} --out {new} --size 0", "--size"),
    ("pretrain --data {dataset} --out {new} --size 100000", "--size"),
    ("pretrain --data {dataset} --out {new} --seed -1", "--seed"),
    ("pretrain --data {dataset} --out {new} --preset bogus", "bogus"),
    ("pretrain --data {dataset} --out {new} --frame-seconds 0", "frame_seconds"),
    ("pretrain --data {dataset} --out {new} --init-from {damaged}", "{damaged}/tokenizer/checkpoint/model.safetensors"),
    ("pretrain --data {pretrain} --out {new}", "info.json"),
    # eval-world
    ("eval-world {pretrain} --data {dataset} --context 0", "--context"),
    ("eval-world {pretrain} --data {dataset} --samples 0", "--samples"),
    ("eval-world {pretrain} --data {dataset} --videos -1", "--videos"),
    ("eval-world {pretrain} --data {dataset} --out {file}", "--out"),
    ("eval-world {missing} --data {dataset}", "missing"),
    # finetune
    ("finetune --data {dataset} --out {file}", "--out"),
    ("finetune --data {dataset} --out {pretrain}", "is a pretraining run"),
    ("finetune --data {dataset} --out {dataset}", "is a dataset"),
    ("finetune --data {dataset} --out {rl}", "is an RL run"),
    ("finetune --data {dataset} --out {empty} --resume", "--resume"),
    ("finetune --data {dataset} --out {new} --pretrained {damaged}", "{damaged}/tokenizer/checkpoint/model.safetensors"),
    ("finetune --data {dataset} --out {new} --scratch-size 0", "--scratch-size"),
    ("finetune --data {dataset} --out {new} --subset-seed -1", "--subset-seed"),
    ("finetune --data {dataset} --out {new} -k 0", "episodes_per_task"),
    ("finetune --data {dataset} --out {new} --pretrained {dataset}", "pretrain.json"),
    # eval
    ("eval --policy {finetune} --out {file}/results.json", "--out"),
    ("eval --policy {finetune} --out {root}", "--out"),
    ("eval --policy {finetune} --video-out {file}", "--video-out"),
    ("eval --policy {finetune} --episodes 0", "episodes"),
    ("eval --policy {finetune} --workers 0", "--workers"),
    ("eval --policy {finetune} --dream-verdict bogus", "bogus"),
    ("eval --policy {dataset}", "finetune.json"),
    # plan
    ("plan --world {finetune} --elites 0", "--elites"),
    ("plan --world {finetune} --samples 0", "--samples"),
    ("plan --world {finetune} --iterations 0", "--iterations"),
    ("plan --world {finetune} --samples 4 --elites 8", "--elites 8"),
    ("plan --world {finetune} --out {file}/results.json", "--out"),
    # rl
    ("rl --policy {finetune} --world {finetune} --task t --out {file}", "--out"),
    ("rl --policy {finetune} --world {finetune} --task t --out {finetune}", "is a finetuned WAM"),
    ("rl --policy {finetune} --world {finetune} --task t --out {empty} --resume", "--resume"),
    ("rl --policy {finetune} --world {finetune} --task t --out {new} --horizon 0", "horizon"),
    ("rl --policy {finetune} --world {finetune} --task t --out {new} --starts 0", "starts"),
    ("rl --policy {finetune} --world {finetune} --task t --out {new} --group 0", "group"),
    ("rl --policy {finetune} --world {finetune} --task t --out {new} --iterations 0", "iterations"),
    ("rl --policy {finetune} --world {finetune} --task t --out {new} --success-hold 0", "success_hold"),
    ("rl --policy {damaged} --world {finetune} --task t --out {new}", "{damaged}/tokenizer/checkpoint/model.safetensors"),
    ("rl --policy {pretrain} --world {finetune} --task t --out {new}", "not a finetuned WAM"),
    # distill and judge
    ("distill --world {finetune} --resume", "--resume"),
    ("distill --world {finetune} --preset bogus", "bogus"),
    ("distill --world {dataset}", "finetune.json"),
    ("judge --world {finetune} --resume", "--resume"),
    ("judge --world {finetune} --seed -1", "--seed"),
    ("drift-guard --world {finetune} --resume", "--resume"),
    ("drift-guard --world {finetune} --window 0", "--window"),
    ("drift-guard --world {finetune} --quantile 0", "quantile"),
    ("drift-guard --world {finetune} --preset bogus", "bogus"),
    # demo
    ("demo --out {file}", "--out"),
    ("demo --out {new} --eval-episodes 0", "eval_episodes"),
    ("demo --out {new} --episodes 0", "episodes"),
    ("demo --out {new} --workers 0", "--workers"),
    ("demo --out {new} --max-steps 0", "max_steps"),
    ("demo --out {new} --preset bogus", "bogus"),
    ("demo --out {dataset}", "{dataset}"),
    # serve: refused before it listens
    ("serve --robots " + FLEET + " --data {new} --port 70000", "--port"),
    ("serve --robots " + FLEET + " --data {new} --port 0", "--port"),
    ("serve --robots " + FLEET + " --data {file}", "--data"),
    ("serve --robots " + FLEET + " --data {video}", "{video}"),
    ("serve --robots " + FLEET + " --data {new} --db nonsense://x", "--db"),
    ("serve --robots " + FLEET + " --data {new} --db sqlite:///{notadb}", "{notadb}"),
    ("serve --robots " + FLEET + " --data {new} --max-episode-steps 0", "--max-episode-steps"),
    ("serve --robots dream/{missing} --data {new}", "dream/{missing}"),
    ("serve --robots bogus/x --data {new}", "bogus"),
    ("serve --robots metaworld/fly-v3 --data {new}", "fly-v3"),
    ("serve --robots " + FLEET + " --data {new} --host 0.0.0.0", "--public"),
    # keys
    ("keys list --data {missing}", "{missing}"),
    ("keys list --data {file}", "--data"),
    ("keys list --db nonsense://x", "--db"),
    ("keys list --db sqlite:///{notadb}", "{notadb}"),
    ("keys list", "--data"),
    ("keys create --scope admin --db postgresql+psycopg://wam:secret@127.0.0.1:9/wam", "wam:***@127.0.0.1:9"),
    ("keys create --scope root --data {new}", "root"),
    ("keys revoke nokey --data {missing}", "{missing}"),
    # robots and tasks: refused before they connect
    ("robots list --url notaurl", "--url"),
    ("robots list --url ftp://host", "ftp://host"),
    ("robots list --url http://host:99999", "--url"),
    ("robots watch r --count 0 --url " + URL, "--count"),
    ("robots reset r --ttl 0 --url " + URL, "--ttl"),
    ("robots reset r --seed -1 --url " + URL, "--seed"),
    ("robots step r 0,0,0,0 --repeat 0 --url " + URL, "--repeat"),
    ("robots step r nan,0,0,0 --url " + URL, "nan,0,0,0"),
    ("robots step r left --url " + URL, "left"),
    ("robots estop --all --release --url " + URL, "--release"),
    ("robots estop --url " + URL, "--all"),
    ("robots show r --url " + URL, "ConnectError"),
    ("robots break-lease r --url notaurl", "--url"),
    ("tasks run reach-v3 --robots 0 --url " + URL, "--robots"),
    ("tasks run reach-v3 --episodes 0 --url " + URL, "--episodes"),
    ("tasks run reach-v3 --seed -1 --url " + URL, "--seed"),
    ("tasks status --url notaurl", "--url"),
    ("tasks cancel x --url notaurl", "--url"),
    ("mcp --url notaurl", "--url"),
    # real to sim
    ("scan import {missing} --out {new}", "no such file"),
    ("scan import {dataset} --out {new} --poses sideways", "--poses"),
    ("scan import {dataset} --out {file}", "--out"),
    ("scan synth {missing} --out {new}", "no scene.json"),
    ("scan synth {dataset} --out {new} --frames 2", "--frames"),
    ("scan synth {dataset} --out {new} --dropout 1.5", "--dropout"),
    ("scan build {missing} --out {new}", "no scan.json"),
    ("scan build {dataset} --out {file}", "--out"),
    ("scan build {dataset} --out {new} --voxel 0", "--voxel"),
    ("scan cousins {dataset} --out {new}", "no scene.json"),
    ("scan cousins {dataset} --out {new} --k 0", "--k"),
    ("scan arrange --out {new} --kinds teapot", "teapot"),
    ("scan arrange --out {file}", "--out"),
    # the console on disk
    ("view {missing}", "no such dataset or run"),
    ("view {file}", "neither a dataset"),
    ("view {dataset} --port 0", "--port"),
    # auto-research
    ("research init {new} --kind alchemy", "--kind"),
    ("research init {new}", "--robot"),
    ("research init {new} --robot {missing}", "missing"),
    ("research init {file}", "is a file"),
    ("research init {new} --kind toy --trials 0", "--trials"),
    ("research init {new} --kind toy --baseline-repeats 1", "--baseline-repeats"),
    ("research run {missing}", "no study.json"),
    ("research run {dataset} --max-trials 0", "--max-trials"),
    ("research report {dataset}", "no study.json"),
    ("research reproduce {dataset} --trial 1", "no study.json"),
    ("research reproduce {dataset} --trial -1", "--trial"),
    ("research mcp {missing}", "no study.json"),
    # bridge
    ("bridge --url notaurl --key k --robot r --sim " + FLEET, "notaurl"),
    ("bridge --url " + URL + " --key k --robot r", "--sim"),
]


@pytest.fixture
def no_server(monkeypatch):
    """A serve row that passed its checks would listen; fail it instead."""
    import wam.api.server

    def started(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setattr(wam.api.server, "serve", started)


@pytest.mark.parametrize("line, named", TABLE, ids=[line for line, _ in TABLE])
def test_bad_input_is_refused_in_one_line(line, named, paths, tmp_path, no_server):
    places = {**{k: str(v) for k, v in paths.items()}, "new": str(tmp_path / "new")}
    before = sorted(p.name for p in paths["root"].iterdir())
    result = invoke(*[word.format(**places) for word in line.split()])
    assert_refused(result, named.format(**places), code=None)
    assert result.exit_code in (1, 2), result.output
    assert not (tmp_path / "new").exists() or line.startswith(("data convert", "serve")), "a refused command left --out"
    assert sorted(p.name for p in paths["root"].iterdir()) == before, "a refused command wrote beside its inputs"
    assert not paths["missing"].parent.exists(), "a refused command created a missing directory"


def test_every_command_has_a_row():
    import typer.main

    def names(group, prefix=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from names(command, (*prefix, name))
            else:
                yield " ".join((*prefix, name))

    covered = {" ".join(w for w in line.split()[:2] if not w.startswith(("-", "{"))) for line, _ in TABLE}
    covered |= {line.split()[0] for line, _ in TABLE}
    missing = [name for name in names(typer.main.get_command(app)) if name not in covered]
    assert not missing, f"commands without a bad-input row: {missing}"


def test_a_bad_out_stops_eval_before_it_starts_and_results_come_first(paths, tmp_path, monkeypatch):
    import wam.dojo.evaluate

    calls = []
    results = {"tasks": {"reach-v3": {"success_rate": 1.0, "wilson95": [0.2, 1.0], "mean_length": 9}},
               "mean_success": 1.0, "policy_steps_per_s": 1.0, "env_steps_per_s": 1.0}
    monkeypatch.setattr(wam.dojo.evaluate, "evaluate_policy", lambda config: calls.append(config) or results)
    assert_refused(invoke("eval", "--policy", paths["finetune"], "--out", paths["file"] / "r.json"), "--out")
    assert calls == []
    out = tmp_path / "deep" / "r.json"
    result = invoke("eval", "--policy", paths["finetune"], "--tasks", "reach-v3", "--out", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == results


def test_a_failed_run_leaves_nothing_that_blocks_its_retry(paths, tmp_path, monkeypatch):
    import wam.train.pretrain
    from wam.errors import DatasetError

    def fails(data, out, *args, **kwargs):
        (out / "tokenizer" / "checkpoint").mkdir(parents=True)  # weights copied in from elsewhere: not work done
        (out / "pretrain.json").write_text("{}")
        raise DatasetError(f"{data[0]}: broken halfway")

    monkeypatch.setattr(wam.train.pretrain, "pretrain", fails)
    out = tmp_path / "run"
    for _ in range(2):  # the retry meets the same error, not "a run already exists here"
        assert_refused(invoke("pretrain", "--data", paths["dataset"], "--out", out), "broken halfway")
        assert not out.exists()


@pytest.mark.slow  # the shared tiny dream run
def test_rl_with_one_start_and_one_rollout(tmp_path_factory, tmp_path):
    """`--starts 1 --group 1` dreams one rollout (it crashed: 'DreamEnv' object has no attribute 'device')."""
    from tests.support.finetune_fixtures import tiny_dream_run

    world = tiny_dream_run(tmp_path_factory)
    out = tmp_path / "rl"
    result = invoke("rl", "--policy", world, "--world", world, "--task", "move the square", "--out", out,
                    "--iterations", 1, "--starts", 1, "--group", 1, "--horizon", 2)
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").is_file()


class FakeClient:
    """The server's side of `wam tasks run`: a run that fails after it started."""

    def __init__(self, url, key):
        self.url = url

    def run_task(self, *args):
        return {"id": "run-1", "status": "running", "episodes": 2, "episodes_done": 0}

    def task(self, run_id):
        return {"id": run_id, "status": "failed", "episodes": 2, "episodes_done": 1, "error": "robot reach-v3-0 died"}

    def robots(self):
        return [{"id": "reach-v3-0", "url": self.url}]


def test_a_failed_task_run_fails_the_wait(monkeypatch):
    import wam.cli.api

    monkeypatch.setattr(wam.cli.api, "_client", FakeClient)
    monkeypatch.setattr(wam.cli.api.time, "sleep", lambda s: None)
    assert_refused(invoke("tasks", "run", "reach-v3", "--episodes", 2, "--wait"), "robot reach-v3-0 died", code=1)
    assert invoke("tasks", "run", "reach-v3", "--episodes", 2).exit_code == 0  # not waited for: started is success


@pytest.mark.parametrize("given", ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"])
def test_the_url_serve_prints_is_a_url_clients_take(given, monkeypatch):
    import wam.cli.api

    monkeypatch.setattr(wam.cli.api, "_client", FakeClient)
    result = invoke("robots", "list", "--url", given)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["url"] == "http://127.0.0.1:8000"


def test_serve_refuses_a_dataset_another_server_writes(paths, tmp_path, no_server):
    from wam.api.worker import WorkerConfig, dataset_features
    from wam.data.writer import DatasetWriter

    data = tmp_path / "fleet"
    with DatasetWriter(data, features=dataset_features(WorkerConfig(data, "pixels", 64, 300)), fps=80):
        assert_refused(invoke("serve", "--robots", FLEET, "--data", data), "another writer")
