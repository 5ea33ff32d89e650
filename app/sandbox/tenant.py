"""The sandbox's Elements tenant: the ids a deployment must set (`ELEMENTS_KANTOOR_ID`,
`ELEMENTS_DOSSIERSTATUS_ID`, every `ELEMENTS_CONTRACT_…_ID`), as the demo, the benchmarks
and the tests set them. The simulator accepts any id; production has no defaults for them."""

from __future__ import annotations

from typing import Any

from app.settings import CONTRACT_TENANT_IDS, ContractSettings

KANTOOR_ID = 14830
DOSSIERSTATUS_ID = 1
CONTRACT_ID = 1
"""Every contract tenant id of the sandbox, unless a test names one."""


def sandbox_contracts(**ids: int) -> ContractSettings:
    """The sandbox's contract ids, each `CONTRACT_ID` unless `ids` names it."""
    values: dict[str, Any] = {**dict.fromkeys(CONTRACT_TENANT_IDS, CONTRACT_ID), **ids}
    return ContractSettings(**values)


def tenant_environment(contracts: ContractSettings | None = None) -> dict[str, str]:
    """The variables of the sandbox's tenant ids, as a deployment sets them."""
    contracts = contracts or sandbox_contracts()
    return {
        "ELEMENTS_KANTOOR_ID": str(KANTOOR_ID),
        "ELEMENTS_DOSSIERSTATUS_ID": str(DOSSIERSTATUS_ID),
        **{
            f"ELEMENTS_CONTRACT_{name.upper()}": str(getattr(contracts, name))
            for name in CONTRACT_TENANT_IDS
        },
    }
