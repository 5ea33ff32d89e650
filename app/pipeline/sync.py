"""The pipeline's entry points: one per event type, each resolve → plan → apply for one dossier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import structlog

from app.clients.anva import AnvaClient, AnvaContract
from app.clients.elements import ContactList, ElementsClient
from app.clients.limiter import today_in_amsterdam
from app.clients.portal import PortalCustomer, PortalDirectory
from app.errors import (
    ContractNotFound,
    CustomerNotFound,
    PermanentError,
    StaleLocator,
    UpstreamRejected,
)
from app.events import FormSubmitted, Operation
from app.pipeline.address import split_street_address
from app.pipeline.apply import Applied, apply_plan
from app.pipeline.contract import (
    KnownContract,
    MedewerkerLocators,
    contract_aanvragers,
    created_contract,
    find_contract,
)
from app.pipeline.contract_mapping import contract_payload, fingerprint, registratie_payload
from app.pipeline.current import KlantLocators, read_adressen, read_dossier, read_dossier_core
from app.pipeline.form import FormChanges
from app.pipeline.limits import Origins, check_lengths
from app.pipeline.locks import KeyedLocks
from app.pipeline.mapping import CUSTOMER_ORIGINS, desired_customer
from app.pipeline.model import DesiredCustomer, DossierState
from app.pipeline.plan import DossierDefaults, Step, address_is_current, plan_customer
from app.pipeline.resolve import resolve_customer
from app.settings import ContractSettings

log = structlog.get_logger(__name__)
CONTACT_LISTS: tuple[tuple[str, ContactList], ...] = (
    ("email", "emailadressen"),
    ("phone", "telefoonnummers"),
)


@dataclass
class Pipeline:
    """The three clients and what the steps share.

    Work on one dossier is serialised by `dossier_locks`: the consumer already orders
    messages per key, but a form (keyed by portal customer id) and a customer event
    (keyed by dossier number) can name the same dossier.
    """

    anva: AnvaClient
    portal: PortalDirectory
    elements: ElementsClient
    defaults: DossierDefaults
    contract_settings: ContractSettings = field(default_factory=ContractSettings)
    dossier_locks: KeyedLocks = field(default_factory=KeyedLocks)
    known_contracts: dict[str, KnownContract] = field(default_factory=dict)
    klant_locators: KlantLocators = field(default_factory=dict)
    medewerkers: MedewerkerLocators = field(default_factory=dict)

    @asynccontextmanager
    async def _locators_checked(self) -> AsyncIterator[None]:
        """A 404 under a remembered klant means it was removed in Elements: read afresh."""
        try:
            yield
        except UpstreamRejected as error:
            if error.status != 404 or not self.klant_locators:
                raise
            self.klant_locators.clear()
            raise StaleLocator("an Elements resource the worker knew is gone") from error

    async def _apply(
        self,
        steps: list[Step],
        current: DossierState | None,
        operations: list[Operation],
        origins: Origins = CUSTOMER_ORIGINS,
    ) -> Applied:
        """Apply a plan whose every value Elements takes; `origins` name them when not."""
        check_lengths(steps, origins)
        applied = await apply_plan(self.elements, steps, current, operations)
        if applied.klant is not None:
            self.klant_locators[applied.dossier()] = applied.klant
        return applied

    async def desired_customer(
        self, dossier_number: str, portal_customer_id: str | None = None
    ) -> DesiredCustomer:
        upstream = await resolve_customer(
            self.anva, self.portal, dossier_number, portal_customer_id
        )
        return desired_customer(dossier_number, upstream.account, upstream.portal)

    async def _sync_customer(
        self, desired: DesiredCustomer, operations: list[Operation]
    ) -> Applied:
        async with self._locators_checked():
            current = await read_dossier(self.elements, desired, self.klant_locators)
            steps = plan_customer(desired, current, self.defaults)
            return await self._apply(steps, current, operations)

    async def sync_customer(self, desired: DesiredCustomer, operations: list[Operation]) -> int:
        """Make Elements hold `desired`; returns the dossier id."""
        async with self.dossier_locks.hold(desired.dossier_number):
            applied = await self._sync_customer(desired, operations)
        return applied.dossier()

    async def sync_contract(
        self, contract_id: str, dossier_number: str, operations: list[Operation]
    ) -> int:
        """Create the contract once (syncing its dossier first when needed), record changes after.

        The contract is forgotten while it is being written to and remembered once the
        writes are answered, so a retry after a lost answer reads Elements again instead
        of adding the same registratie twice.
        """
        contract = await self.anva.contract(contract_id)
        if contract is None:
            raise ContractNotFound(f"ANVA does not know contract {contract_id}")
        if contract.dossierNumber != dossier_number:
            log.warning(
                "contract names another dossier than its event; ANVA wins",
                contract_id=contract_id,
                event_dossier=dossier_number,
                anva_dossier=contract.dossierNumber,
            )
        number = contract.dossierNumber
        async with self.dossier_locks.hold(number):
            known = self.known_contracts.pop(contract.id, None) or await find_contract(
                self.elements, number, contract.id
            )
            if known is None:
                known = await self._create_contract(contract, number, operations)
            if known.fingerprint != fingerprint(contract):
                operations.append(await self._record(contract, known))
                known = known.synced_from(contract)
            self.known_contracts[contract.id] = known
            return known.dossier_id

    async def _record(self, contract: AnvaContract, known: KnownContract) -> Operation:
        """The "overgenomen" registratie on a contract without one of ours, else what changed."""
        payload = registratie_payload(
            contract,
            before=known.summary,
            created=known.fingerprint is None,
            settings=self.contract_settings,
        )
        return await self.elements.add_contract_registratie(
            known.dossier_id, known.product_id, payload
        )

    async def _create_contract(
        self, contract: AnvaContract, dossier_number: str, operations: list[Operation]
    ) -> KnownContract:
        desired = await self.desired_customer(dossier_number)
        applied = await self._sync_customer(desired, operations)
        if applied.klant is None or applied.standaard_adres_id is None:
            raise PermanentError(
                f"dossier {dossier_number} has no klant or correspondentieadres for a contract"
            )
        dossier_id = applied.dossier()
        aanvragers = await contract_aanvragers(
            self.elements,
            desired,
            dossier_id,
            applied.klant,
            medewerkers=self.medewerkers,
            settings=self.contract_settings,
            operations=operations,
        )
        payload = contract_payload(
            contract,
            aanvragers=aanvragers,
            adres_id=applied.standaard_adres_id,
            settings=self.contract_settings,
            today=today_in_amsterdam(),
        )
        created = await self.elements.create_contract(dossier_id, payload)
        operations.append(created)
        return created_contract(dossier_id, created)

    async def _linked_customer(self, portal_customer_id: str) -> tuple[str, PortalCustomer]:
        """The portal customer and the dossier number its `integrationId` gives."""
        customer = await self.portal.by_id(portal_customer_id)
        if customer is None:
            raise CustomerNotFound(f"the portal does not know customer {portal_customer_id}")
        if customer.dossier_number is None:
            raise CustomerNotFound(f"portal customer {portal_customer_id} is not linked to ANVA")
        return customer.dossier_number, customer

    async def apply_form(
        self, form: FormSubmitted, operations: list[Operation]
    ) -> tuple[int, list[str]]:
        """Apply the submitted fields to the customer's dossier; returns it and the ignored fields."""
        changes = FormChanges.from_fields(form.fields)
        number, customer = await self._linked_customer(form.customerId)
        structlog.contextvars.bind_contextvars(dossier_number=number)
        account = await self.anva.account_for_dossier(number)
        base = desired_customer(number, account, customer)
        async with self.dossier_locks.hold(number), self._locators_checked():
            wanted = replace(base, adres=None, email=changes.email, phone=changes.phone)
            current = await read_dossier(self.elements, wanted, self.klant_locators)
            if current is None:
                desired = replace(
                    base,
                    adres=changes.adres_over(base.adres) or base.adres,
                    email=changes.email or base.email,
                    phone=changes.phone or base.phone,
                )
            else:
                standaard = current.standaard_adres.adres if current.standaard_adres else base.adres
                desired = replace(wanted, adres=changes.adres_over(standaard))
                if not address_is_current(desired, current):
                    await read_adressen(self.elements, current)
            steps = plan_customer(desired, current, self.defaults)
            applied = await self._apply(steps, current, operations, changes.origins())
        return applied.dossier(), changes.ignored

    async def prefill(self, portal_customer_id: str) -> dict[str, str]:
        """The form fields known for a customer: Elements' current values over the portal's."""
        number, customer = await self._linked_customer(portal_customer_id)
        async with self._locators_checked():
            return await self._prefill_values(number, customer)

    async def _prefill_values(self, number: str, customer: PortalCustomer) -> dict[str, str]:
        street = split_street_address(customer.address or "")
        values = {
            "email": customer.primaryEmail,
            "phone": customer.phone,
            "street": street.straat,
            "houseNumber": street.nummer,
            "houseNumberAddition": street.toevoeging,
            "postcode": customer.zipCode,
            "city": customer.city,
        }
        state = await read_dossier_core(self.elements, number, "particulier", self.klant_locators)
        if state is not None and state.standaard_adres is not None:
            adres = state.standaard_adres.adres
            values.update(
                street=adres.straat,
                houseNumber=adres.nummer,
                houseNumberAddition=adres.toevoeging,
                postcode=adres.postcode,
                city=adres.plaatsnaam,
            )
        if state is not None and state.klant is not None:
            klant = state.klant
            for field_name, which in CONTACT_LISTS:
                found = await self.elements.contacts(state.id, klant.kind, klant.id, which)
                if found:
                    values[field_name] = max(found, key=lambda c: c.id).naam
        return {name: value for name, value in values.items() if value}
