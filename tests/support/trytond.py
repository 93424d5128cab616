"""One real trytond per test session, whichever test directory asks for it first.

``tests/tryton`` and ``tests/contract`` both need a Tryton server; each session fixture that
returns ``shared_server(request)`` gets the same one, started on first use and stopped when
the session ends (a server takes seconds to start and memory while it runs).
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.tryton import server as srv

_STASH = pytest.StashKey["srv.TrytonServer"]()


def shared_server(request: pytest.FixtureRequest) -> srv.TrytonServer:
    config = request.config
    server = config.stash.get(_STASH, None)
    if server is None:
        stack = ExitStack()
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        server = stack.enter_context(srv.running_server(factory.mktemp("trytond")))
        config.stash[_STASH] = server
        config.add_cleanup(stack.close)
    return server
