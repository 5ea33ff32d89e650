"""Unit-test fixtures: `core` is the pipeline without Kafka (see `app.sandbox.core`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.sandbox.core import Core, running_core


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    async with running_core() as started:
        yield started
