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
_CITIES = ("Amsterdam", "Utrecht", "Den Haag", "Rotterdam", "Groningen", "Zwolle")
_NAMES = (
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


def seed_customer(anva: AnvaSimulator, portal: PortalSimulator, index: int) -> SampleCustomer:
    """Register customer `index` in ANVA (a person, unless a business) and in the portal."""
    customer = sample_customer(index)
    first, middle, last = _NAMES[index % len(_NAMES)]
    anva.add_account(
        account_id=index + 1,
        first_name=None if customer.is_business else first,
        middle_name=None if customer.is_business else middle,
        last_name=None if customer.is_business else last,
        email=f"klant{index}@example.nl",
        dossiers={ORGANISATION_ID: customer.dossier_number},
    )
    portal.add_customer(
        customer_id=customer.portal_id,
        company_name=f"{last} Advies B.V." if customer.is_business else f"{first} {last}",
        address=_STREETS[index % len(_STREETS)],
        zip_code=f"{1000 + index % 9000} AB",
        city=_CITIES[index % len(_CITIES)],
        primary_email=f"klant{index}@example.nl",
        phone=f"+31 6 {10_000_000 + index}",
        integration="anva",
        integration_id=customer.dossier_number,
    )
    return customer


def seed_customers(
    anva: AnvaSimulator, portal: PortalSimulator, count: int
) -> list[SampleCustomer]:
    return [seed_customer(anva, portal, index) for index in range(count)]


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
