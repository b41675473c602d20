"""`wam view`: a lerobot-written dataset and a run on disk in the console, in a real browser; clear errors."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.browser import wait_for
from tests.support.live_server import free_port
from wam.console.view import view_app

pytestmark = pytest.mark.slow


def serve(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def lerobot_view(tmp_path_factory):
    from tests.support.lerobot_like import write_lerobot_dataset

    root = write_lerobot_dataset(tmp_path_factory.mktemp("view") / "aloha", episodes=2, length=40, fps=10,
                                 cameras={"observation.images.top": (48, 64), "observation.images.wrist": (32, 32)})
    url, server, thread = serve(view_app(root))
    yield url, root
    server.should_exit = True
    thread.join(30)




def test_a_lerobot_dataset_opens_and_an_episode_plays_with_its_cursor(lerobot_view, chrome):
    from selenium.webdriver.common.by import By

    url, root = lerobot_view
    chrome.get(url + "/")
    assert "observation.state" in chrome.page_source and "2 episodes" in chrome.page_source
    chrome.get(url + "/console/episodes")
    assert len(chrome.find_elements(By.CSS_SELECTOR, "table a")) == 2
    chrome.get(url + "/console/episodes/1")
    videos = chrome.find_elements(By.CSS_SELECTOR, "video.camera")
    assert len(videos) == 2  # every camera the dataset has
    wait_for(lambda: chrome.execute_script("return document.querySelector('video.camera').currentTime") > 0.3)
    plots = wait_for(lambda: chrome.find_elements(By.CSS_SELECTOR, "canvas.plot"))
    assert {p.get_attribute("data-series") for p in plots} >= {"observation.state", "action", "next.reward"}
    cursors = {wait_for(lambda: chrome.find_element(By.CSS_SELECTOR, ".plots").get_attribute("data-cursor"))}
    deadline = time.monotonic() + 20
    while len(cursors) < 3 and time.monotonic() < deadline:
        cursors.add(chrome.find_element(By.CSS_SELECTOR, ".plots").get_attribute("data-cursor"))
        time.sleep(0.1)
    assert len(cursors) >= 3  # the cursor moves with the video


def test_a_missing_episode_shows_one_clear_message(lerobot_view, chrome):
    from selenium.webdriver.common.by import By

    url, _ = lerobot_view
    chrome.get(url + "/console/episodes/7")
    errors = chrome.find_elements(By.CSS_SELECTOR, ".error")
    assert len(errors) == 1 and "no episode 7" in errors[0].text and "0..1" in errors[0].text


def test_a_run_shows_its_training_curves(tmp_path, chrome):
    from selenium.webdriver.common.by import By

    run = tmp_path / "run"
    (run / "tokenizer").mkdir(parents=True)
    (run / "tokenizer" / "metrics.jsonl").write_text(
        "".join(f'{{"step": {s}, "loss": {1 / s}, "psnr": {20 + s / 10}}}\n' for s in range(1, 50)) + '{"step": 5')
    (run / "finetune.json").write_text("{}")
    url, server, thread = serve(view_app(run))
    try:
        chrome.get(url + "/")
        wait_for(lambda: chrome.find_element(By.CSS_SELECTOR, ".curves").get_attribute("data-plots") == "2")
    finally:
        server.should_exit = True
        thread.join(30)


def test_what_is_neither_a_dataset_nor_a_run_is_refused(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable dataset"):
        view_app(tmp_path)
    with pytest.raises(ValueError, match="neither a dataset"):
        view_app(tmp_path / "meta")
    with pytest.raises(ValueError, match="no such dataset or run"):
        view_app(tmp_path / "absent")


def test_an_episode_downloads_as_a_one_episode_dataset(lerobot_view, tmp_path):
    import io
    import zipfile

    import httpx
    import numpy as np

    from wam.data.reader import Dataset

    url, root = lerobot_view
    answer = httpx.get(url + "/console/episodes/1/download", timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(answer.content)).extractall(tmp_path)
    copy, original = Dataset(tmp_path / "episode_000001"), Dataset(root)
    assert copy.num_episodes == 1 and copy.episodes[0].length == original.episodes[1].length
    assert copy.episodes[0].task == original.episodes[1].task
    np.testing.assert_allclose(copy.low_dim(0)["observation.state"], original.low_dim(1)["observation.state"], rtol=1e-6)
    assert sorted(copy.camera_keys) == sorted(original.camera_keys)


def test_the_benchmarks_results_are_browsed_as_recorded(chrome):
    from pathlib import Path

    from selenium.webdriver.common.by import By

    headline = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "headline"
    url, server, thread = serve(view_app(headline))
    try:
        chrome.get(url + "/")
        rows = chrome.find_elements(By.CSS_SELECTOR, "table tr")
        assert len(rows) > 10 and "F-score at 1 cm" in chrome.page_source
        chrome.get(url + "/console/results/real2sim")
        assert "python benchmarks/real2sim.py" in chrome.page_source
        wait_for(lambda: chrome.execute_script("const i = document.querySelector('img.media'); return i && i.naturalWidth > 0;"))
        chrome.get(url + "/console/results/nothing")
        assert len(chrome.find_elements(By.CSS_SELECTOR, ".error")) == 1
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_study_shows_its_live_report(tmp_path):
    import httpx

    from wam.research.loop import run_study
    from wam.research.proposers import ScriptedProposer
    from wam.research.runners import toy_knobs
    from wam.research.spec import EvaluatorSpec, init_study

    study = init_study(tmp_path / "study", EvaluatorSpec("toy", budget={"trials": 2}, baseline_repeats=3, seeds=(5,),
                                                         holdout_seeds=(6,)), toy_knobs())
    run_study(study, ScriptedProposer([{"x": 0.7, "lr": 0.001}, {"seed": 3}]))
    url, server, thread = serve(view_app(study))
    try:
        page = httpx.get(url + "/", follow_redirects=True).text
        assert 'http-equiv="refresh"' in page and "data:image/png;base64," in page
        assert "1 kept" in page and "belongs to the evaluator" in page  # the kept change and the rejected proposal
    finally:
        server.should_exit = True
        thread.join(30)
