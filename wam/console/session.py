"""Who is looking at the console: the API key in a cookie, checked exactly as the API checks it, and a CSRF token.

The key lives in an HttpOnly, SameSite=Strict cookie (never in a URL or in the page's storage), so scripts on the
page cannot read it and other sites cannot send it. Every request that changes something (an emergency stop) must
also carry the page's CSRF token in a header: an HMAC of the key under a secret this server drew at start, so a
forged form post from anywhere, even one that rides the cookie, is refused. Scope and robot pattern hold here as in
the API: a read key sees the fleet and no button that changes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request

from wam.api.auth import can_use, check_scope
from wam.api.store import KeyInfo

COOKIE = "wam_console"
CSRF_HEADER = "x-csrf-token"


class SignInNeeded(Exception):
    """No key, or one that is unknown or revoked: the page sends the person to sign in, with `message`."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


def csrf_secret(request: Request) -> bytes:
    state = request.app.state
    if not hasattr(state, "console_secret"):
        state.console_secret = secrets.token_bytes(32)
    return state.console_secret


def csrf_token(request: Request, key_secret: str) -> str:
    return hmac.new(csrf_secret(request), key_secret.encode(), hashlib.sha256).hexdigest()


def signed_in(request: Request) -> tuple[KeyInfo, str]:
    """(the key, its secret) from the cookie, verified now (a revoked key is refused at its next request)."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise SignInNeeded()
    try:
        return request.app.state.auth.verify(secret), secret
    except HTTPException:
        raise SignInNeeded("that key is unknown or has been revoked: sign in with a valid key") from None


def check_csrf(request: Request, secret: str) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent, csrf_token(request, secret)):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def may_control(key: KeyInfo) -> bool:
    try:
        check_scope(key, "control")
        return True
    except HTTPException:
        return False


def visible(key: KeyInfo, robots) -> list[str]:
    return [r for r in robots if can_use(key, r)]
