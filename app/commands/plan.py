"""`python -m app plan DOSSIER_NUMBER`: the Elements writes a `customer.changed` would make now.

The worker's own entry point runs, resolve → plan → apply, with its length checks, over
an Elements transport that records the writes instead of sending them
(`app.commands.recording`): Elements sees only reads (and the token request), and the
plan is what the worker would write, not a second description of it. Exit codes: 0 with
the plan; 3 when the event would fail (the customer cannot be resolved, or a value
Elements would refuse); 4 when an upstream API could not be read now (a retry later may do).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

import httpx

from app.clients.elements import API as ELEMENTS
from app.commands.recording import RecordingTransport
from app.errors import PermanentError, RetryableError
from app.events import CustomerChanged
from app.pipeline.customer import sync_customer
from app.settings import Settings
from app.state.ownership import DossierOwners
from app.wiring import build_pipeline

EXIT_WOULD_FAIL = 3
EXIT_UNAVAILABLE = 4


async def planned(
    settings: Settings,
    dossier_number: str,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> dict[str, object]:
    """The plan's JSON object; raises the `SyncError` the event would meet.

    `transports` (per API name) replace the network, as for `build_pipeline`; Elements'
    is wrapped by the recorder either way. The dossier is owned in this process only,
    whatever the settings say (and, without a state topic, remembered here only): with the replicas' Redis, its lease would hold
    up a worker syncing it, and remembering would take the dossier's next revision there,
    one the worker would then wait for in vain.
    """
    given = transports or {}
    recorder = RecordingTransport(given.get(ELEMENTS) or httpx.AsyncHTTPTransport())
    pipeline = build_pipeline(
        settings,
        transports={**given, ELEMENTS: recorder},
        owners=DossierOwners(),
    )
    try:
        await sync_customer(pipeline.context, CustomerChanged(dossierNumber=dossier_number))
    finally:
        await pipeline.close()
    return {"dossierNumber": dossier_number, "operations": [w.as_json() for w in recorder.writes]}


async def run_plan(settings: Settings, dossier_number: str) -> int:
    try:
        plan = await planned(settings, dossier_number)
    except PermanentError as error:
        print(f"{error.code}: {error}", file=sys.stderr)
        return EXIT_WOULD_FAIL
    except RetryableError as error:
        print(f"{error.code}: {error} (try again later)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(json.dumps(plan, ensure_ascii=False))
    return 0
