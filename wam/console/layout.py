"""The console's page frame (header, navigation, the one stylesheet and script) and its error pages."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"


NAV = (("fleet", "/console/fleet"), ("tasks", "/console/tasks"), ("episodes", "/console/episodes"), ("dataset", "/console/data"))


def page(title: str, body: str, csrf: str = "", who: str = "", nav=NAV) -> HTMLResponse:
    nav = " ".join(f'<a href="{href}">{name}</a>' for name, href in nav)
    signed = (f'<span class="who">{html.escape(who)} · <a href="/console/signout">sign out</a></span>' if who else "")
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="csrf-token" content="{csrf}">
<title>{html.escape(title)} · wam</title><link rel="stylesheet" href="/console/static/console.css"></head>
<body><header><a class="brand" href="/console/">wam console</a><nav>{nav}</nav>{signed}</header>
<main><h1>{html.escape(title)}</h1>{body}</main><script src="/console/static/console.js"></script></body></html>""")


def html_errors(app: FastAPI) -> None:
    """A console page that fails says so in one line on a page; the API's routes keep their JSON errors."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def console_error(request: Request, error: StarletteHTTPException):
        path = request.url.path
        if not path.startswith("/console") or path.endswith((".json", ".png", ".mp4")) or request.method != "GET":
            return await http_exception_handler(request, error)
        titles = {404: "Not found", 403: "Not allowed", 422: "Cannot read it"}
        response = page(titles.get(error.status_code, "Error"), f'<p class="error" role="alert">{html.escape(str(error.detail))}</p>',
                        nav=getattr(request.app.state, "console_nav", NAV))
        response.status_code = error.status_code
        return response
