"""`python -m app plan DOSSIER_NUMBER`: the Elements writes a `customer.changed` would make now.

The customer is resolved, mapped, read from Elements and planned by the very functions
the worker runs (`resolved_customer`, `planned_dossier`), and the plan is checked like
the worker checks it before its first write; nothing is applied. Elements sees only
reads (and the token request). Exit codes: 0 with the plan; 3 when the event would fail
(the customer cannot be resolved, or a value Elements would refuse); 4 when an upstream
API could not be read now (a retry later may do).
"""

from __future__ import annotations

import json
import sys

from app.errors import PermanentError, RetryableError
from app.pipeline.apply import check_lengths
from app.pipeline.customer import planned_dossier, resolved_customer
from app.pipeline.customer_plan import CUSTOMER_ORIGINS
from app.pipeline.dry_run import planned_operations
from app.settings import Settings
from app.wiring import build_pipeline

EXIT_WOULD_FAIL = 3
EXIT_UNAVAILABLE = 4


async def planned(settings: Settings, dossier_number: str) -> dict[str, object]:
    """The dry run's JSON object; raises the `SyncError` the event would meet."""
    pipeline = build_pipeline(settings)
    try:
        context = pipeline.context
        desired = await resolved_customer(context, dossier_number)
        steps, current = await planned_dossier(context, desired)
        check_lengths(steps, CUSTOMER_ORIGINS)
    finally:
        await pipeline.close()
    operations = planned_operations(steps, current)
    return {"dossierNumber": dossier_number, "operations": [o.as_json() for o in operations]}


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
