"""Unit-test fixtures: `core` is the pipeline without Kafka (see `tests.unit.core`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.core import Core, running_core


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    async with running_core() as started:
        yield started
