"""Fixtures of the lsr-layer tests: a real `lsr serve` process to start, call and kill."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(port, method, path, body=None, timeout=30):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _start(index, port):
    proc = subprocess.Popen([sys.executable, "-m", "lsr", "-q", "serve", str(index), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if _call(port, "GET", "/health", timeout=2)[0] == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("the server did not answer /health within 120 s")


def _kill9(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)




@pytest.fixture
def lsr_server():
    """``start(index, port)`` a server process (waits for /health), ``call(port, method, path, body)``,
    ``kill9(process)``, ``free_port()``."""
    return SimpleNamespace(start=_start, call=_call, kill9=_kill9, free_port=_free_port)
