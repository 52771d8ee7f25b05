"""The review page: analysts label the queued cases in a browser (`fraudlab review serve`).

A small Starlette app (the Starlette that MLServer and FastAPI bring):

- `GET /` lists the pending cases, highest score first, each with a form (genuine / fraud, the
  analyst's name); `POST /label` stores a label and redirects back (303, post/redirect/get).
- `GET /api/cases?pending=true|false&day=YYYY-MM-DD`, `GET /api/summary`: the queue as JSON (the
  lab's checks read them on the cluster); `GET /healthz`.

Safety: every value written into the page goes through `html.escape`; the form carries a CSRF
token that must equal the page's cookie (the double-submit pattern, OWASP CSRF Prevention Cheat
Sheet), the cookie is `SameSite=Strict; HttpOnly`; a post from another origin (`Origin` header)
is refused; a Content-Security-Policy allows no script at all. Bad input gets a 4xx with a
message: 400 (a field missing or malformed), 403 (CSRF), 404 (no such case), 413 (body over
`MAX_FORM_BYTES`), never a 500.

Example:
    >>> app = create_app(Settings())                       # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8097)      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from ..config import Settings
from .review import LABELS, ReviewError, ReviewQueue

CSRF_COOKIE = "review_csrf"
MAX_FORM_BYTES = 4096
PAGE_SIZE = 200
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _error(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=HEADERS)


# --8<-- [start:page]
def _row(case: dict, token: str) -> str:
    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731 - every value into the page
    options = "".join(f'<option value="{k}">{e(v)}</option>' for k, v in LABELS.items())
    return (
        f"<tr><td>{e(case['day'])}</td><td>{e(case['transaction_id'])}</td><td>{e(case['customer_id'])}</td>"
        f"<td>{e(case['terminal_id'])}</td><td>{case['amount']:.2f}</td><td>{case['score']:.3f}</td>"
        f'<td><form method="post" action="/label"><input type="hidden" name="csrf" value="{e(token)}">'
        f'<input type="hidden" name="transaction_id" value="{e(case["transaction_id"])}">'
        f'<select name="label">{options}</select> <input name="analyst" required maxlength="64" placeholder="analyst">'
        f' <button>label</button></form></td></tr>'
    )  # fmt: skip


# --8<-- [end:page]


def create_app(settings: Settings, queue: ReviewQueue | None = None) -> Starlette:
    """The review page's ASGI app on the queue of `settings` (or `queue`)."""
    queue = queue or ReviewQueue.from_settings(settings)

    async def page(request: Request) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        pending = queue.cases(pending=True, limit=PAGE_SIZE)
        summary = queue.summary()
        rows = (
            "".join(_row(c, token) for c in pending)
            or '<tr><td colspan="7">No case waiting.</td></tr>'
        )
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fraud Lab review queue</title>'
            "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd}</style>"
            f"<h1>Review queue</h1><p>{summary['reviewed']} of {summary['queued']} cases reviewed, "
            f"{summary['pending']} pending (band [{settings.review_band_low}, {settings.review_band_high}), "
            f"{settings.review_capacity} a day). Decide on the evidence; the score is the model's guess, not the answer.</p>"
            "<table><tr><th>day</th><th>transaction</th><th>customer</th><th>terminal</th><th>amount</th><th>score</th><th>label</th></tr>"
            f"{rows}</table></html>"
        )  # fmt: skip
        response = HTMLResponse(body, headers=HEADERS)
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    # --8<-- [start:post]
    async def label(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return _error(
                413, f"a label form is at most {MAX_FORM_BYTES} bytes, with Content-Length"
            )
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _error(403, "cross-origin post refused")
        try:
            form = await request.form(max_files=0, max_fields=8)
        except Exception:  # malformed body or a file: the client's fault
            return _error(400, "a urlencoded form with csrf, transaction_id, label, analyst")
        cookie, sent = request.cookies.get(CSRF_COOKIE, ""), str(form.get("csrf", ""))
        if not cookie or not secrets.compare_digest(cookie.encode(), sent.encode()):
            return _error(403, "CSRF token missing or not this page's: reload the page")
        raw_id, raw_label = str(form.get("transaction_id", "")), str(form.get("label", ""))
        if not raw_id.isdigit() or raw_label not in {"0", "1"}:
            return _error(400, "transaction_id: a number; label: 0 (genuine) or 1 (fraud)")
        try:
            queue.label(int(raw_id), int(raw_label), str(form.get("analyst", "")))
        except ReviewError as err:
            return _error(404 if "no queued case" in str(err) else 400, str(err))
        return RedirectResponse("/", status_code=303, headers=HEADERS)

    # --8<-- [end:post]

    async def api_cases(request: Request) -> Response:
        pending = {"true": True, "false": False, None: None}.get(
            request.query_params.get("pending"), "bad"
        )
        day = request.query_params.get("day")
        if pending == "bad":
            return _error(400, "pending: true or false")
        if day is not None:
            try:
                dt.date.fromisoformat(day)
            except ValueError:
                return _error(400, "day: YYYY-MM-DD")
        return JSONResponse(queue.cases(day=day, pending=pending), headers=HEADERS)

    async def api_summary(_: Request) -> Response:
        return JSONResponse({**queue.summary(), "batches": queue.batches()}, headers=HEADERS)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/label", label, methods=["POST"]),
            Route("/api/cases", api_cases, methods=["GET"]),
            Route("/api/summary", api_summary, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
