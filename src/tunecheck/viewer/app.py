"""The viewer and blind-review web app (FastAPI, server-rendered Jinja2, bundled assets).

Access: every request needs a session, opened by a secret token in the URL
(``?token=...``) which is then moved into an HttpOnly, SameSite=Strict cookie and
removed from the address bar by a redirect (so it stays out of history and logs).
The viewer token opens every page; a reviewer's token opens only that reviewer's
review page (a reviewer must not see which output is the fine-tune's). Tokens are
compared with :func:`hmac.compare_digest`; reviewer tokens are looked up by SHA-256.
POSTs need the session's CSRF token in ``X-CSRF-Token`` and a same-origin
``Origin``/``Referer``. Jinja2 autoescapes everything, and a Content-Security-Policy
lets only this page's own scripts (by nonce) run.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.middleware.trustedhost import TrustedHostMiddleware

from tunecheck.errors import TunecheckError
from tunecheck.store import Store, open_store
from tunecheck.viewer.data import RunCache

COOKIE = "tunecheck_session"
_ASSETS = Path(__file__).parent / "static"


def environment() -> Environment:
    """The Jinja2 environment of the viewer's templates (autoescape on for everything)."""
    env = Environment(
        loader=PackageLoader("tunecheck.viewer", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    # our own bundled files, trusted: inserted verbatim
    env.globals["asset"] = lambda name: Markup((_ASSETS / name).read_text(encoding="utf-8"))
    return env


@dataclass
class Session:
    kind: str  # "viewer" or "reviewer"
    csrf: str
    reviewer: Any = None


@dataclass
class Sessions:
    items: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, kind: str, reviewer: Any = None) -> str:
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.items[sid] = Session(kind, secrets.token_urlsafe(32), reviewer)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.lock:
            # constant-time over the stored ids: a session id is a bearer secret too
            for key, value in self.items.items():
                if hmac.compare_digest(key.encode(), sid.encode()):
                    return value
        return None


def create_app(
    store: Store | str | None = None,
    *,
    token: str,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The app: viewer pages under ``/``, the blind review under ``/review``.

    ``token`` opens the viewer; reviewer tokens are checked against the store.
    ``allowed_hosts``: Host header values accepted (default: loopback names only,
    which also stops DNS-rebinding pages from reading the viewer).
    """
    if not token or len(token) < 16:
        raise TunecheckError("the viewer token must be at least 16 characters")
    st = store if isinstance(store, Store) else open_store(store)
    cache = RunCache(st)
    env = environment()
    sessions = Sessions()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost", "[::1]"]
    )
    app.state.store, app.state.cache, app.state.sessions = st, cache, sessions

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        sess = getattr(request.state, "session", None)
        html = env.get_template(template).render(
            nonce=nonce, csrf=sess.csrf if sess else "", standalone=False, **ctx
        )
        resp = HTMLResponse(html, status_code=status)
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'"
        )
        return resp

    def forbidden(request: Request, why: str) -> HTMLResponse:
        return page(request, "forbidden.html", status=403, why=why)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        request.state.session = None
        given = request.query_params.get("token")
        if given is not None:
            kind, reviewer = None, None
            if hmac.compare_digest(given.encode(), token.encode()):
                kind = "viewer"
            else:
                from tunecheck.review import authenticate

                reviewer = authenticate(st, given)
                kind = "reviewer" if reviewer else None
            if kind is None:
                return forbidden(request, "wrong or expired token")
            sid = sessions.open(kind, reviewer)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = "/review" if kind == "reviewer" else request.url.path
            if rest and kind == "viewer":
                target += "?" + urlencode(rest)
            resp = RedirectResponse(target, status_code=303)
            resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
            return resp
        sess = sessions.get(request.cookies.get(COOKIE))
        if sess is None:
            return forbidden(request, "missing token: open the URL printed by tunecheck")
        request.state.session = sess
        reviewer_paths = ("/review", "/review/label")
        if sess.kind == "reviewer" and request.url.path not in reviewer_paths:
            return forbidden(request, "a reviewer's token opens only the review page")
        if request.method not in ("GET", "HEAD"):
            if not hmac.compare_digest(
                request.headers.get("x-csrf-token", "").encode(), sess.csrf.encode()
            ):
                return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
            source = request.headers.get("origin") or request.headers.get("referer")
            host = request.headers.get("host", "")
            if not source or urlsplit(source).netloc != host:
                return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
        return await call_next(request)

    from tunecheck.viewer import routes

    routes.register(app, page, forbidden)
    return app
