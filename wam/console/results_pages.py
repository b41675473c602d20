"""The benchmarks' results in the console: `wam view benchmarks/results/headline` (or any folder of result files).

A result file (`wam.result/1`, written by benchmarks/results_io.py) already holds its claims with targets and
verdicts, its table, its plot, the command and the machine; these pages show them as they are, the plot served
from the repository the file names it in. Nothing here computes a figure.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from wam.console.layout import page

SCHEMA = "wam.result/1"
NAV = (("results", "/console/results"),)
router = APIRouter(prefix="/console", include_in_schema=False)


def result_files(folder: Path) -> dict[str, dict]:
    """benchmark name -> its result, for every readable result file in `folder`."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(payload, dict) and payload.get("schema") == SCHEMA:
            found[payload.get("benchmark", path.stem)] = payload
    return found


def _verdict(claim: dict) -> str:
    return "undecided" if claim.get("met") is None else "met" if claim["met"] else "MISSED"


def _value(claim: dict) -> str:
    interval = claim.get("interval")
    text = f"{claim['value']:g} {claim.get('unit') or ''}".strip()
    return text + (f" [{interval[0]:g}, {interval[1]:g}]" if interval else "")


@router.get("/results")
def results_page(request: Request):
    results = result_files(request.app.state.console_results)
    rows = "".join(
        f'<tr class="{_verdict(c).lower()}"><td><a href="/console/results/{html.escape(name)}">{html.escape(c["claim"])}</a></td>'
        f"<td>{html.escape(_value(c))}</td><td>{html.escape(str(c.get('target', '')))}</td><td>{_verdict(c)}</td></tr>"
        for name, result in sorted(results.items(), key=lambda kv: kv[1].get("rank", 100)) for c in result.get("claims", []))
    table = ("<table><tr><th>claim</th><th>measured</th><th>target</th><th>verdict</th></tr>" + rows + "</table>"
             if rows else "<p>No result files here.</p>")
    return page("Results", f"<p>{len(results)} result files in <code>{html.escape(str(request.app.state.console_results))}"
                           f"</code>.</p>{table}", nav=NAV)


@router.get("/results/{name}")
def result_page(name: str, request: Request):
    results = result_files(request.app.state.console_results)
    if name not in results:
        raise HTTPException(404, f"no result {name!r} here; results: {', '.join(sorted(results)) or 'none'}")
    result = results[name]
    claims = "".join(f"<li><b>{_verdict(c)}</b>: {html.escape(c['claim'])}: {html.escape(_value(c))} (target "
                     f"{html.escape(str(c.get('target', '')))}){' · ' + html.escape(c['note']) if c.get('note') else ''}</li>"
                     for c in result.get("claims", []))
    table = ""
    if result.get("table"):
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in result["table"]["columns"])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                       for row in result["table"]["rows"])
        table = f"<table><tr>{head}</tr>{body}</table>"
    plot = f'<p><img class="media" src="/console/results/{html.escape(name)}/plot" alt="plot"></p>' if result.get("plot") else ""
    machine = result.get("provenance", {}).get("machine", {})
    body = (f"<p>{html.escape(result.get('summary', ''))}</p><p>status <b>{html.escape(result.get('status', ''))}</b> · "
            f"<code>{html.escape(result.get('command', ''))}</code> · {html.escape(str(machine.get('cpu', '')))}, "
            f"{machine.get('cores', '')} cores</p><ul>{claims}</ul>{plot}{table}")
    return page(result.get("title", name), body, nav=NAV)


@router.get("/results/{name}/plot")
def result_plot(name: str, request: Request):
    folder = request.app.state.console_results
    result = result_files(folder).get(name)
    if not result or not result.get("plot"):
        raise HTTPException(404, f"result {name!r} has no plot")
    # the plot's path is relative to the repository the result file sits in (benchmarks/results/headline/)
    for root in (folder, *folder.parents):
        candidate = (root / result["plot"]).resolve()
        if candidate.is_file() and candidate.suffix in (".png", ".gif") and root.resolve() in candidate.parents:
            return FileResponse(candidate)
    raise HTTPException(404, f"the plot of {name!r} ({result['plot']}) is not in this repository")
