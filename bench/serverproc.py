"""Start a contestant's server script in its own process, pinned to its own core."""

from __future__ import annotations

import os
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.contestants import Contestant

__all__ = ["REPO", "ServerProcess", "ServerError", "raise_fd_limit"]

REPO = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """The server did not start, or died."""


def raise_fd_limit() -> None:
    """Let this process open as many sockets as the hard limit allows (the idle scenarios hold up to 10,000+).

    The runner calls it for itself (the load client); the server processes get it before they exec.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


class ServerProcess:
    """``python -m <contestant.module>`` on a free port; ``port`` and ``pid`` once started.

    Its command line ends with the contestant's ``args`` (``--uvloop``), then
    ``args`` (what a scenario asks of the server: ``--listen default``,
    ``--heartbeat-interval default``).

    A contestant with a ``command`` (node's socket.io 0.6) runs that instead,
    exec'd directly, so that ``pid`` is the server's own process (no shell or
    npm wrapper whose CPU time would be read instead).

    ``stop`` sends SIGTERM, on which every server script returns from its
    loop (so a profiler wrapping it writes its statistics), then waits.
    """

    def __init__(
        self,
        contestant: Contestant,
        cpu: int | None = None,
        startup_timeout: float = 30.0,
        launcher: list[str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.contestant = contestant
        self.args = args
        #: Interpreter arguments before ``-m <module>`` (e.g. ``["-m", "cProfile", "-o", path]``).
        self.launcher = launcher or []
        self.cpu = cpu
        self.startup_timeout = startup_timeout
        self.port = 0
        self._log = tempfile.TemporaryFile()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "start the server first"
        return self._proc.pid

    def start(self) -> ServerProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("PYTHONASYNCIODEBUG", None)
        env.pop("PYTHONDEVMODE", None)
        cpu = self.cpu

        def pin() -> None:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            raise_fd_limit()

        self._proc = subprocess.Popen(
            self.argv(),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=pin,  # noqa: PLW1509 (no threads in the runner)
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._proc.poll() is not None:
                self.stop()
                raise ServerError(f"{self.contestant.module} did not start:\n{self.log_tail()}")
            ready, _, _ = select.select([self._proc.stdout], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(self._proc.stdout.fileno(), 256)
                if not chunk:
                    continue
                line += chunk
        word, _, port = line.decode().strip().partition(" ")
        if word != "LISTENING" or not port.isdigit():
            self.stop()
            raise ServerError(f"{self.contestant.module} printed {line!r} instead of 'LISTENING <port>'")
        self.port = int(port)
        return self

    def argv(self) -> list[str]:
        """The server's command line."""
        command = self.contestant.command
        extra = [*self.contestant.args, *self.args]
        if not command:
            return [sys.executable, *self.launcher, "-m", self.contestant.module, *extra]
        if self.launcher:
            raise ServerError(f"{self.contestant.name}: a launcher wraps only Python servers")
        program = shutil.which(command[0])
        if program is None:
            raise ServerError(f"{self.contestant.name}: {command[0]} is not on PATH")
        return [program, *command[1:], *extra]

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def log_tail(self, lines: int = 15) -> str:
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._log.close()
