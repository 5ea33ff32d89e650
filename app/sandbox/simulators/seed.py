"""Sample customers for the demo, the benchmark and the tests, registered in both upstream sims.

Every third customer is a business that ANVA knows no person for (a zakelijk klant);
the addresses exercise the Dutch forms the splitter must handle.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.portal import PortalSimulator

_STREETS = (
    "Hoofdstraat 12-A",
    "Kerkstraat 5 bis",
    "1e Jan Steenstraat 10A",
    "Laan van Meerdervoort 1001 B",
    "Stationsweg 3",
    "Dorpsstraat 44-2",
)
CITIES = ("Amsterdam", "Utrecht", "Den Haag", "Rotterdam", "Groningen", "Zwolle")
NAMES = (
    ("Jan", "de", "Vries"),
    ("Fatima", None, "El Amrani"),
    ("Pieter", "van der", "Berg"),
    ("Sanne", None, "Jansen"),
    ("Kees", "van", "Dijk"),
    ("Lotte", None, "Bakker"),
)
ORGANISATION_ID = "301"


@dataclass(frozen=True)
class SampleCustomer:
    dossier_number: str
    portal_id: str
    is_business: bool


def sample_customer(index: int) -> SampleCustomer:
    return SampleCustomer(
        dossier_number=str(100_000 + index),
        portal_id=f"cst_{index:012d}",
        is_business=index % 3 == 2,
    )


def _add_account(anva: AnvaSimulator, index: int, dossier_numbers: list[str]) -> None:
    """Customer `index`'s ANVA account (a person, unless a business), holding these dossiers,
    one per organisation."""
    is_business = sample_customer(index).is_business
    first, middle, last = NAMES[index % len(NAMES)]
    anva.add_account(
        account_id=index + 1,
        first_name=None if is_business else first,
        middle_name=None if is_business else middle,
        last_name=None if is_business else last,
        email=f"klant{index}@example.nl",
        dossiers={str(int(ORGANISATION_ID) + n): d for n, d in enumerate(dossier_numbers)},
    )


def _add_portal_customer(portal: PortalSimulator, index: int) -> None:
    customer = sample_customer(index)
    first, _, last = NAMES[index % len(NAMES)]
    portal.add_customer(
        customer_id=customer.portal_id,
        company_name=f"{last} Advies B.V." if customer.is_business else f"{first} {last}",
        address=_STREETS[index % len(_STREETS)],
        zip_code=f"{1000 + index % 9000} AB",
        city=CITIES[index % len(CITIES)],
        primary_email=f"klant{index}@example.nl",
        phone=f"+31 6 {10_000_000 + index}",
        integration="anva",
        integration_id=customer.dossier_number,
    )


def seed_customer(anva: AnvaSimulator, portal: PortalSimulator, index: int) -> SampleCustomer:
    """Register customer `index` in ANVA (an account of its own) and in the portal."""
    seed_in_anva(anva, index)
    return seed_in_portal(portal, index)


def seed_in_anva(anva: AnvaSimulator, index: int) -> SampleCustomer:
    """Customer `index` in ANVA only (an account of its own): one the portal does not know
    yet, as when ANVA registers a customer before the portal does."""
    _add_account(anva, index, [sample_customer(index).dossier_number])
    return sample_customer(index)


def seed_in_portal(portal: PortalSimulator, index: int) -> SampleCustomer:
    """Customer `index` in the portal only, at the end of its listing."""
    _add_portal_customer(portal, index)
    return sample_customer(index)


def seed_customers(
    anva: AnvaSimulator, portal: PortalSimulator, count: int
) -> list[SampleCustomer]:
    return [seed_customer(anva, portal, index) for index in range(count)]


def seed_office(
    anva: AnvaSimulator, portal: PortalSimulator, customers: int, *, other_integrations: int
) -> list[SampleCustomer]:
    """An office's worth of customers, as `bench-scale` needs them: in each three, the two
    persons share one ANVA account (two dossiers, as a household may) and the business has
    its own, so 10,000 customers make 6,667 accounts; the portal lists every customer, with
    `other_integrations` customers of another integration spread among them (their
    `integrationId` may equal a dossier number, as another system's ids may)."""
    seeded = [sample_customer(index) for index in range(customers)]
    for index in range(0, customers, 3):
        household = seeded[index : index + 2]
        _add_account(anva, index, [c.dossier_number for c in household])
        if index + 2 < customers:
            _add_account(anva, index + 2, [seeded[index + 2].dossier_number])
    every = max(customers // max(other_integrations, 1), 1)
    others = 0
    for index in range(customers):
        _add_portal_customer(portal, index)
        if index % every == every - 1 and others < other_integrations:
            _add_other_integration(portal, others)
            others += 1
    for extra in range(others, other_integrations):
        _add_other_integration(portal, extra)
    return seeded


def _add_other_integration(portal: PortalSimulator, index: int) -> None:
    portal.add_customer(
        customer_id=f"cst_x{index:011d}",
        company_name=f"Boekhouding {index} B.V.",
        address=_STREETS[index % len(_STREETS)],
        zip_code=f"{2000 + index % 8000} CD",
        city=CITIES[index % len(CITIES)],
        primary_email=f"boekhouding{index}@example.nl",
        phone=None,
        integration="exact",
        integration_id=str(100_000 + index),
    )


def seed_contract(
    anva: AnvaSimulator, contract_id: str, dossier_number: str, *, product: str = "Woonhuis"
) -> None:
    """A running ANVA contract of `dossier_number` that started on 2026-01-01."""
    anva.add_contract(
        contract_id=contract_id,
        dossier_number=dossier_number,
        format=product,
        status="Lopend",
        metadata={"omschrijving": f"{product}verzekering", "startDate": "2026-01-01"},
    )
