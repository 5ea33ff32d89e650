"""A customer the portal did not know yet: a miss never stands in for the portal's state.

Real broker, simulators on loopback, the production wiring, the default
`PORTAL_MISS_TTL_S`: the portal adds the customer after an event missed it there, and the
next event reads it.
"""

from __future__ import annotations

import pytest

from app.sandbox.simulators.seed import seed_customer, seed_in_anva, seed_in_portal
from app.sandbox.world import Sandbox
from app.settings import PortalSettings
from tests.e2e.helpers import only_dossier, only_klant, sync

pytestmark = pytest.mark.e2e

PARTICULIER = 0  # seed index of "Jan de Vries", Hoofdstraat 12-A, Amsterdam


async def test_a_customer_the_portal_adds_after_a_miss_is_synced_whole_by_the_next_event(
    sandbox: Sandbox,
) -> None:
    for other in range(1, 21):  # two pages of others before it, as in a real listing
        seed_customer(sandbox.anva, sandbox.portal, other)
    customer = seed_in_anva(sandbox.anva, PARTICULIER)
    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    (before,) = await sandbox.results(1)
    without_portal = only_dossier(sandbox, customer.dossier_number)

    seed_in_portal(sandbox.portal, PARTICULIER)
    await sync(sandbox, customer.dossier_number)
    _, after = await sandbox.results(2)

    assert sandbox.settings().portal.miss_ttl_s == PortalSettings.model_fields["miss_ttl_s"].default
    assert before.data.status == "succeeded"
    assert without_portal["_embedded"].get("standaardcorrespondentieadres") is None, (
        "the first event missed the customer in the portal"
    )
    assert after.data.status == "succeeded"
    assert after.data.servedBy is None
    dossier = only_dossier(sandbox, customer.dossier_number)
    klant = only_klant(dossier)
    assert (klant["voornaam"], klant["achternaam"]) == ("Jan", "Vries")
    adres = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "12", "A")
    assert (adres["postcode"], adres["plaatsnaam"]) == ("1000AB", "Amsterdam")
    assert "klant0@example.nl" in [e["naam"] for e in klant["emailadressen"]]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
