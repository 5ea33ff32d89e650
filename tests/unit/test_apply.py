"""Writes made before a failure leave on the error (pure: no I/O)."""

from __future__ import annotations

import pytest

from app.errors import InternalError, UpstreamUnavailable
from app.events import Operation
from app.pipeline.apply import writes_kept

DOSSIER = Operation(method="POST", path="/api/data/klantdossiers", status=201, resourceId=5526)
KLANT = Operation(
    method="POST", path="/api/data/klantdossiers/5526/klanten/particulier", status=201, resourceId=7
)


def test_an_error_leaving_the_block_carries_the_writes_made_before_its_own() -> None:
    error = UpstreamUnavailable("Elements answered 503")
    error.writes = (KLANT,)

    with pytest.raises(UpstreamUnavailable) as raised, writes_kept([DOSSIER]):
        raise error

    assert raised.value.writes == (DOSSIER, KLANT)


def test_a_bug_leaves_as_the_internal_error_the_ladder_would_make_of_it_with_the_writes() -> None:
    with pytest.raises(InternalError) as raised, writes_kept([DOSSIER]):
        raise LookupError("a bug of ours")

    assert str(raised.value) == "internal error: LookupError"
    assert raised.value.writes == (DOSSIER,)
    assert isinstance(raised.value.__cause__, LookupError)
