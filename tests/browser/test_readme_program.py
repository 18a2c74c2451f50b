"""The README's first example is a complete program: run as written, its page echoes in Chromium."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", re.MULTILINE)
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def first_example() -> str:
    match = BLOCK.search((ROOT / "README.rst").read_text(encoding="utf-8"))
    assert match is not None
    code = "\n".join(line[4:] for line in match.group(1).splitlines())
    assert "SocketIOServer(application)" in code
    # The one change: a free loopback port instead of 8888 (and of 843 for the Flash policy).
    return code.replace(
        "SocketIOServer(application)", 'SocketIOServer(application, port=0, address="127.0.0.1", flash_policy_port=0)'
    )


def test_the_first_example_serves_its_page_and_the_client_and_echoes(browser: Any, tmp_path: Path) -> None:
    if not (ROOT / "node_modules/socket.io/support/socket.io-client/socket.io.js").exists():
        pytest.skip("the 0.6 client is installed by `make setup` (npm install socket.io@0.6.18)")
    program = tmp_path / "echo.py"
    program.write_text(first_example(), encoding="utf-8")
    # Run as written, with one addition: SIGUSR1 dumps every thread's stack (see below).
    launcher = (
        "import faulthandler, runpy, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
        "runpy.run_path(sys.argv[1], run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, str(program)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # As from a terminal: a runner that started the tests in the background had SIGINT ignored,
        # and the program (by design) leaves an inherited "ignore" as it is.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        port = None
        while port is None:
            line = lines.get(timeout=20)
            output.append(line)
            found = LISTENING.search(line)
            port = found.group(1) if found else None
        assert output[0] is line, output  # the first thing it says is where it listens
        page = browser.new_page()
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "document.getElementById('log').textContent.includes('[echo] OMG! Ponies!')", timeout=20_000
            )
            assert page.evaluate("document.getElementById('log').textContent").startswith("connected\n")
        finally:
            page.close()
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(20) == 0
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # where it hangs, for the failure message
            reader.join(5)
            while not lines.empty():
                output.append(lines.get())
            raise AssertionError("the program did not end within 20 s of Ctrl-C:\n" + "".join(output)) from None
        reader.join(5)
        while not lines.empty():
            output.append(lines.get())
        text = "".join(output)
        assert "client connected over websocket" in text
        assert "Traceback" not in text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
