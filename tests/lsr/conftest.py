"""Fixtures of the lsr-layer tests."""

import pytest


@pytest.fixture
def lsr_server():
    """Start ``lsr serve`` processes (:class:`lsr.serve.ServerProcess`); every one still running is killed after."""
    from lsr.serve import ServerProcess

    started = []

    def start(index, *args):
        server = ServerProcess(index, args=args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill9()
