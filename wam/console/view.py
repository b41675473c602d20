"""`wam view DATA|RUN|STUDY|RESULTS`: the console's pages for a dataset, a run, an auto-research study or the
benchmarks' results, on loopback, no key.

A dataset opens on its overview and episodes (the same pages `wam serve` shows for its recordings). A run opens
on its training curves (every `metrics.jsonl` the run's stages wrote, loss and the rest against step), its summary,
and the videos and plots it saved (a dream beside the real rollout, when the run has them); TensorBoard stays for
depth.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from wam.console.layout import STATIC, html_errors, page

router = APIRouter(prefix="/console", include_in_schema=False)
RUN_NAV = (("run", "/console/run"),)
STUDY_NAV = (("study", "/console/study"),)
MEDIA = (".mp4", ".gif", ".png")


def _run(request: Request) -> Path:
    return request.app.state.console_run


def curves(run: Path) -> dict[str, dict[str, list]]:
    """stage -> metric -> [[step, value], ...] from every metrics.jsonl under the run."""
    found = {}
    for path in sorted(run.rglob("metrics.jsonl")):
        stage = str(path.parent.relative_to(run)) if path.parent != run else run.name
        series: dict[str, list] = {}
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and "step" in row:
                    series.setdefault(key, []).append([row["step"], value])
        if series:
            found[stage] = series
    return found


@router.get("/run")
def run_page(request: Request):
    run = _run(request)
    summary = run / "summary.json"
    facts = ""
    if summary.exists():
        values = json.loads(summary.read_text())
        facts = "".join(f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(json.dumps(v)[:200])}</code></td></tr>"
                        for k, v in values.items())
        facts = f"<h2>Summary</h2><table>{facts}</table>"
    media = [p for p in sorted(run.rglob("*")) if p.suffix in MEDIA and p.is_file()][:24]
    shown = "".join(
        (f'<figure><video class="camera" src="/console/run/file/{html.escape(str(p.relative_to(run)))}" muted autoplay loop '
         f'controls></video>' if p.suffix == ".mp4" else
         f'<figure><img class="media" src="/console/run/file/{html.escape(str(p.relative_to(run)))}" alt="">')
        + f"<figcaption>{html.escape(str(p.relative_to(run)))}</figcaption></figure>" for p in media)
    body = (f"<p><code>{html.escape(str(run))}</code></p><h2>Training curves</h2>"
            f'<div class="curves" data-source="/console/run/curves.json"></div>{facts}'
            + (f'<h2>Videos and plots</h2><div class="videos">{shown}</div>' if shown else ""))
    return page(f"Run {run.name}", body, nav=RUN_NAV)


@router.get("/run/curves.json")
def run_curves(request: Request):
    return curves(_run(request))


@router.get("/run/file/{path:path}")
def run_file(path: str, request: Request):
    run = _run(request).resolve()
    target = (run / path).resolve()
    if run not in target.parents or not target.is_file() or target.suffix not in MEDIA:
        raise HTTPException(404, f"no such file in the run: {path}")
    return FileResponse(target)


@router.get("/study")
def study_page(request: Request):
    """An auto-research study's live report (wam research), rewritten from its ledger at every visit; the page
    reloads itself every 10 s while the study runs."""
    from fastapi.responses import HTMLResponse

    from wam.research.report import write_report

    report = write_report(request.app.state.console_study).read_text()
    return HTMLResponse(report.replace("<head>", '<head><meta http-equiv="refresh" content="10">', 1))


def view_app(path: str | Path) -> FastAPI:
    """An app for one dataset (meta/info.json) or one run directory; a clear error for anything else."""
    from wam.console.data_pages import router as data_router
    from wam.console.results_pages import NAV as RESULTS_NAV
    from wam.console.results_pages import result_files
    from wam.console.results_pages import router as results_router
    from wam.data.reader import Dataset
    from wam.errors import DatasetError
    from wam.runs import run_kind

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such dataset or run")
    app = FastAPI(title="wam view", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console_open = True
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    html_errors(app)
    if (path / "meta" / "info.json").is_file():
        try:
            Dataset(path)
        except DatasetError as error:
            raise ValueError(f"{path}: not a readable dataset ({error})") from None
        app.state.console_data, app.state.console_nav = path, (("episodes", "/console/episodes"), ("dataset", "/console/data"))
        app.include_router(data_router)
        start = "/console/data"
    elif (path / "study.json").is_file():
        app.state.console_study, app.state.console_nav = path.resolve(), STUDY_NAV
        app.include_router(router)
        start = "/console/study"
    elif path.is_dir() and result_files(path):
        app.state.console_results, app.state.console_nav = path.resolve(), RESULTS_NAV
        app.include_router(results_router)
        start = "/console/results"
    elif run_kind(path) is not None or any(path.rglob("metrics.jsonl")):
        app.state.console_run, app.state.console_nav = path.resolve(), RUN_NAV
        app.include_router(router)
        start = "/console/run"
    else:
        raise ValueError(f"{path}: neither a dataset (meta/info.json), a run (metrics.jsonl, finetune.json, ...), a study "
                         "(study.json) nor a folder of benchmark results (benchmarks/results/headline)")

    @app.get("/", include_in_schema=False)
    @app.get("/console/", include_in_schema=False)
    def root():
        return RedirectResponse(start, status_code=307)

    return app
