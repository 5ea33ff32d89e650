"""The office-scale seed of `bench-scale`: the shape the issue measured at, found as the worker finds it."""

from __future__ import annotations

from collections import Counter

from app.clients.anva import index_accounts
from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.simulators.seed import seed_office


def test_ten_thousand_customers_make_6667_accounts_and_10500_portal_customers() -> None:
    anva, portal = AnvaSimulator(token="t"), PortalSimulator(token="t")

    seeded = seed_office(anva, portal, 10_000, other_integrations=500)

    accounts = list(anva._accounts.values())
    customers = list(portal._customers.values())
    index = index_accounts(accounts)
    assert (len(seeded), len(accounts), len(customers)) == (10_000, 6_667, 10_500)
    assert Counter(c["integration"] for c in customers) == {"anva": 10_000, "exact": 500}
    assert all(c.dossier_number in index for c in seeded)
    assert customers[-1]["integration"] == "exact", "other integrations are spread to the end"
    business = [c for c in seeded if c.is_business]
    assert all(index[c.dossier_number]["lastName"] is None for c in business)
