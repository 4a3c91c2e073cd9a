"""Helpers of the web tests (a module of its own: test modules import it by name)."""

from __future__ import annotations

import re
from dataclasses import dataclass

PASSWORDS = {
    "admin": "admin-password-1",
    "lab": "lab-password-12",
    "coordinator": "coord-password-1",
    "researcher": "research-pass-1",
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    """A TestClient with helpers: log in, read the CSRF token of a page, post a form with it."""

    client: object
    csrf: str | None = None

    def login(self, username: str, password: str | None = None) -> object:
        client = self.client
        page = client.get("/login")
        token = CSRF.search(page.text).group(1)
        response = client.post(
            "/login",
            data={
                "username": username,
                "password": password or PASSWORDS[username],
                "csrf_token": token,
                "next": "/",
            },
            follow_redirects=False,
        )
        home = client.get("/account")
        found = CSRF.search(home.text)
        self.csrf = found.group(1) if found else None
        return response

    def post(self, path: str, data: dict | None = None, **kwargs: object) -> object:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.csrf}, **kwargs)


def as_user(app, username: str) -> Browser:
    """A second client, logged in as ``username``."""
    from fastapi.testclient import TestClient

    browser = Browser(TestClient(app))
    browser.login(username)
    return browser
