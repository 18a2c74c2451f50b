"""README.rst cannot rot: its Python blocks run, in order, as one session, and its test example passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:    .*)?\n)+)", re.MULTILINE)


def blocks(language: str) -> list[str]:
    found = []
    for match in BLOCK.finditer(README.read_text(encoding="utf-8")):
        if match.group(1) == language:
            lines = match.group(2).splitlines()
            found.append("\n".join(line[4:] for line in lines).strip() + "\n")
    return found


def test_every_python_block_runs_and_the_example_test_passes() -> None:
    python = blocks("python")
    assert len(python) >= 5
    namespace: dict[str, Any] = {"__name__": "readme"}  # not __main__: nothing starts serving
    for number, code in enumerate(python, 1):
        exec(compile(code, f"README.rst python block {number}", "exec"), namespace)
    namespace["test_echo"]()  # the "Testing your handlers" example, against the first example's app


def test_the_nginx_block_is_the_deployment_config_the_test_runs() -> None:
    (nginx,) = blocks("nginx")
    deploy = (README.parent / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert nginx == deploy


def test_the_readme_is_valid_restructuredtext() -> None:
    """A malformed table renders as an error box on the package page: no warning may pass."""
    docutils_core = pytest.importorskip("docutils.core", reason="docutils comes with the dev extra")
    text = README.read_text(encoding="utf-8")
    docutils_core.publish_string(
        text, writer="null", settings_overrides={"report_level": 2, "halt_level": 2, "warning_stream": False}
    )
