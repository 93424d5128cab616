"""Console fixtures: the API tests' gateway (fake ERP, rows seeded through the models) and a
browser-like client that signs in through the form and keeps its cookies."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import API_KEYS, Gateway, gw, seed  # noqa: F401  (fixtures)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_of(html: str) -> str:
    found = META_CSRF.search(html) or CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    answer = await client.post(
        "/console/login", data={"key": key, "csrf": csrf_of(form.text), "next": "/console/"}
    )
    assert answer.status_code == 303, answer.text
    home = await client.get("/console/")
    assert home.status_code == 200, home.text
    return csrf_of(home.text)


def browser(gateway: Gateway) -> httpx.AsyncClient:
    """A second client on the same app with its own cookie jar (one per signed-in person)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway"
    )
