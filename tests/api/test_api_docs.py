"""/docs and /redoc work on a host without internet: every file they load is the gateway's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Gateway

_URLS = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            "/docs",
            {
                "/static/docs/swagger-ui-bundle.js": "javascript",
                "/static/docs/swagger-ui.css": "css",
            },
        ),
        ("/redoc", {"/static/docs/redoc.standalone.js": "javascript"}),
    ],
)
async def test_docs_pages_load_only_files_the_gateway_serves(
    gw: Gateway, page: str, expected: dict[str, str]
) -> None:
    answer = await gw.client.get(page)
    assert answer.status_code == 200
    html = answer.text
    urls = {a or b for a, b in _URLS.findall(html)}
    assert set(expected) <= urls
    assert "://" not in html, html  # no absolute URL: nothing from another host
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from another host"
        loaded = await gw.client.get(url)
        assert loaded.status_code == 200, url
        if url in expected:
            assert expected[url] in loaded.headers["content-type"], url
            assert len(loaded.content) > 50_000, url  # the real bundle, not a stub
    assert "/openapi.json" in urls


async def test_swagger_ui_shows_no_validator_badge_from_another_host(gw: Gateway) -> None:
    assert '"validatorUrl": null' in (await gw.client.get("/docs")).text


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_every_schema_reference_resolves_in_the_document(gw: Gateway) -> None:
    """ReDoc refuses the whole page over one ``$ref`` it cannot follow (a nested ``$defs``
    of a hand-written response schema did that)."""
    spec = (await gw.client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    for ref in set(_refs(spec)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in components, ref
