"""Unit-test fixtures: `core` is the pipeline without Kafka (see `app.sandbox.core`);
`contract_environment` the least environment a worker starts with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.sandbox.core import Core, running_core
from app.sandbox.tenant import tenant_environment


@pytest.fixture
def contract_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables a worker needs (the contract's required ones), none of them reachable."""
    for name, value in {
        "ANVA_BASE_URL": "https://anva.example/api",
        "ANVA_TOKEN": "anva-token",
        "PORTAL_TOKEN": "portal-token",
        "ELEMENTS_BASE_URL": "https://elements.example",
        "ELEMENTS_CLIENT_ID": "client",
        "ELEMENTS_CLIENT_SECRET": "secret",
        "ELEMENTS_ORGANISATION": "org",
        **tenant_environment(),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    async with running_core() as started:
        yield started
