"""The console's dataset and episode pages: what a recorded (or any LeRobot) dataset holds, and one episode played.

An episode page plays every camera the dataset has (re-encoded as browser-friendly H.264, scaled up, whatever the
dataset stored: per-episode mp4, lerobot's packed mp4s or PNG bytes in the parquet) beside plots of its state, action
and reward over time; a cursor on the plots follows the video's time. The same pages serve the fleet's recordings
under `wam serve` (a signed-in key sees the episodes of the robots its pattern matches) and any dataset on disk under
`wam view DATA` (local, no key).
"""

from __future__ import annotations

import html
import json
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response

from wam.api.auth import can_use
from wam.console.layout import page
from wam.console.session import signed_in
from wam.data.reader import Dataset
from wam.errors import DatasetError

router = APIRouter(prefix="/console", include_in_schema=False)
SCALE = 4  # small robot frames, scaled up by pixel repetition for human eyes


VIEW_NAV = (("episodes", "/console/episodes"), ("dataset", "/console/data"))


def _nav(request: Request):
    from wam.console.layout import NAV

    return VIEW_NAV if getattr(request.app.state, "console_open", False) else NAV


def _viewer(request: Request):
    """(key or None, who): `wam view` is open (no key); `wam serve` needs a signed-in key."""
    if getattr(request.app.state, "console_open", False):
        return None, ""
    key, _ = signed_in(request)
    return key, f"{key.name or key.id} ({key.scope})"


def _dataset(request: Request) -> Dataset:
    root = getattr(request.app.state, "console_data", None)
    if root is None:
        config = getattr(request.app.state, "config", None)
        root = getattr(config, "data", None)
    if root is None:
        raise HTTPException(404, "this console has no dataset to show")
    try:
        return _open(str(Path(root).resolve()), _mtime(Path(root)))
    except DatasetError as error:
        raise HTTPException(422, f"the dataset cannot be read: {error}") from None


def _mtime(root: Path) -> float:
    info = root / "meta" / "info.json"
    return info.stat().st_mtime if info.exists() else 0.0


@lru_cache(maxsize=4)
def _open(root: str, mtime: float) -> Dataset:  # reopened when the recorder adds episodes (info.json changes)
    return Dataset(root)


def _allowed(key, episode) -> bool:
    robot = episode.row.get("info/robot")
    return key is None or robot is None or can_use(key, str(robot))


def _episode(request: Request, index: int):
    key, who = _viewer(request)
    dataset = _dataset(request)
    if not 0 <= index < dataset.num_episodes or not _allowed(key, dataset.episodes[index]):
        raise HTTPException(404, f"no episode {index} in this dataset (it has {dataset.num_episodes}: episodes "
                                 f"0..{dataset.num_episodes - 1})")
    return dataset, dataset.episodes[index], who


@router.get("/data")
def dataset_page(request: Request):
    key, who = _viewer(request)
    dataset = _dataset(request)
    rows = "".join(f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(f.dtype)}</td><td>{list(f.shape)}</td>"
                   f"<td>{html.escape(', '.join(f.names or [])[:120])}</td></tr>" for name, f in dataset.features.items())
    stats_path = dataset.root / "meta" / "stats.json"
    stats = ""
    if stats_path.exists():
        values = json.loads(stats_path.read_text())
        stats = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td>" + "".join(
                f"<td>{html.escape(_short(v.get(s)))}</td>" for s in ("mean", "std", "min", "max")) + "</tr>"
            for k, v in values.items() if isinstance(v, dict) and "mean" in v and not k.startswith("observation.images"))
        stats = f"<h2>Statistics</h2><table><tr><th>feature</th><th>mean</th><th>std</th><th>min</th><th>max</th></tr>{stats}</table>"
    info = dataset.info
    body = (f"<p><code>{html.escape(str(dataset.root))}</code>: {dataset.num_episodes} episodes, {dataset.num_frames} frames "
            f"at {info.get('fps')} fps, robot <b>{html.escape(str(info.get('robot_type')))}</b>, cameras "
            f"{html.escape(', '.join(dataset.camera_keys) or 'none')}. <a href=\"/console/episodes\">episodes</a></p>"
            f"<h2>Features</h2><table><tr><th>key</th><th>dtype</th><th>shape</th><th>names</th></tr>{rows}</table>{stats}")
    return page("Dataset", body, who=who, nav=_nav(request))


def _short(value) -> str:
    array = np.asarray(value, dtype=float).reshape(-1) if value is not None else np.zeros(0)
    return ", ".join(f"{v:.3g}" for v in array[:6]) + (" ..." if array.size > 6 else "")


@router.get("/episodes")
def episodes_page(request: Request, task: str = "", success: str = "", robot: str = "", run: str = ""):
    key, who = _viewer(request)
    dataset = _dataset(request)
    shown = []
    for episode in dataset.episodes:
        row_robot = str(episode.row.get("info/robot", ""))
        if not _allowed(key, episode) or (task and task not in episode.task) or (robot and robot != row_robot):
            continue
        if run and str(episode.row.get("info/run", "")) != run:
            continue
        if success in ("yes", "no") and episode.success is not (success == "yes"):
            continue
        shown.append(f'<tr><td><a href="/console/episodes/{episode.index}">{episode.index}</a></td>'
                     f"<td>{html.escape(episode.task)}</td><td>{html.escape(row_robot or '-')}</td><td>{episode.length}</td>"
                     f"<td>{'-' if episode.success is None else 'yes' if episode.success else 'no'}</td></tr>")
    form = (f'<form class="filters" method="get">task <input name="task" value="{html.escape(task)}"> robot '
            f'<input name="robot" value="{html.escape(robot)}"> success <select name="success">'
            + "".join(f'<option{" selected" if success == v else ""}>{v}</option>' for v in ("", "yes", "no"))
            + '</select> <button type="submit">filter</button></form>')
    table = ("<table><tr><th>episode</th><th>task</th><th>robot</th><th>frames</th><th>success</th></tr>"
             + "".join(shown) + "</table>") if shown else "<p>No episode matches.</p>"
    return page("Episodes", f"<p>{len(shown)} of {dataset.num_episodes} episodes.</p>{form}{table}", who=who,
                nav=_nav(request))


@router.get("/episodes/{index}")
def episode_page(index: int, request: Request):
    dataset, episode, who = _episode(request, index)
    videos = "".join(
        f'<figure><video class="camera" data-camera="{html.escape(c)}" src="/console/episodes/{index}/video/{html.escape(c)}.mp4" '
        f'muted autoplay loop playsinline controls></video><figcaption>{html.escape(c)}</figcaption></figure>'
        for c in dataset.camera_keys)
    facts = {k.removeprefix("info/"): v for k, v in episode.row.items() if k.startswith("info/")}
    body = (f'<p class="task">{html.escape(episode.task)}</p><p>{episode.length} frames · success '
            f"<b>{'-' if episode.success is None else 'yes' if episode.success else 'no'}</b> · "
            + " · ".join(f"{html.escape(k)} <code>{html.escape(str(v))}</code>" for k, v in facts.items())
            + f' · <a class="download" href="/console/episodes/{index}/download">download (LeRobot v3, one episode)</a>'
            + f'</p><section class="episode"><div class="videos">{videos or "<p>no cameras</p>"}</div>'
            f'<div class="plots" data-source="/console/episodes/{index}/data.json"></div></section>')
    return page(f"Episode {index}", body, who=who, nav=_nav(request))


@router.get("/episodes/{index}/data.json")
def episode_data(index: int, request: Request):
    dataset, episode, _ = _episode(request, index)
    series = {}
    for key, values in dataset.low_dim(index).items():
        if key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
            continue
        array = np.asarray(values, dtype=float).reshape(len(values), -1)
        if not np.isfinite(array).all():
            array = np.where(np.isfinite(array), array, 0.0)
        feature = dataset.features.get(key)
        names = list(feature.names) if feature is not None and feature.names else [str(i) for i in range(array.shape[1])]
        series[key] = {"names": names[: array.shape[1]], "values": array.round(5).tolist()}
    return {"fps": dataset.info.get("fps"), "length": episode.length, "series": series}


@router.get("/episodes/{index}/video/{camera}.mp4")
def episode_video(index: int, camera: str, request: Request):
    dataset, _, _ = _episode(request, index)
    if camera not in dataset.camera_keys:
        raise HTTPException(404, f"episode {index} has no camera {camera!r}; cameras: {', '.join(dataset.camera_keys)}")
    return Response(_mp4(str(dataset.root), index, camera, float(dataset.info.get("fps") or 10)), media_type="video/mp4",
                    headers={"Cache-Control": "private, max-age=60"})


@lru_cache(maxsize=32)
def _mp4(root: str, index: int, camera: str, fps: float) -> bytes:
    from wam.data.export import write_video

    frames = _open(root, _mtime(Path(root))).frames(index, camera)
    frames = frames.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "episode.mp4"
        write_video(frames, path, max(1, int(round(fps))))
        return path.read_bytes()


@router.get("/episodes/{index}/download")
def episode_download(index: int, request: Request):
    """The episode as a one-episode dataset in the same format (LeRobot v3), zipped: `wam data check` reads it."""
    import io
    import zipfile

    dataset, episode, _ = _episode(request, index)
    with tempfile.TemporaryDirectory() as directory:
        from wam.data.subset import copy_episodes

        root = copy_episodes(dataset, [index], Path(directory) / f"episode_{index:06d}")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(root.parent))
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="episode_{index:06d}.zip"'})
