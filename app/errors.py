"""The service's errors; the split under `SyncError` decides retry or fail.

    SettingsError                     a variable is missing or malformed (start-up only)
    TopicSetupError                   a topic the worker needs is missing and not created (start-up)
    SyncError                         anything that stops one event from syncing
    ├── RetryableError                worth trying again later
    │   ├── UpstreamUnavailable       5xx, timeout, connection error (ANVA, portal, Elements)
    │   ├── RateLimited               Elements answered 429 (carries Retry-After when sent)
    │   ├── StaleLocator              a klant the worker remembered is gone: read again
    │   ├── StateUnavailable          the state topic did not take a record needed before a write
    │   ├── OwnershipLost             this replica's lease on the dossier ran out mid-sync
    │   └── DailyBudgetExhausted      our own count or Elements' daily 429: wait for midnight
    │       └── BackfillReserveReached    a backfill met the budget kept for live events
    └── PermanentError                trying again gives the same answer
        ├── UpstreamRejected          a 4xx other than 401/404/429 from any API
        │   └── ElementsValidationError   Elements' "Validatie fouten" 400, with its items
        ├── AuthenticationFailed      credentials refused (after one re-authentication)
        │   └── GrantRefused          Elements' token endpoint refused a grant (400/401)
        ├── CustomerNotFound          neither ANVA nor the portal knows the dossier number
        ├── CustomerIncomplete        known, but with no name to give the klant
        ├── InvalidCustomerData       a value longer than Elements allows for its field
        ├── InvalidFormField          a form's e-mail or phone that is not one
        ├── ContractNotFound          ANVA does not know the contract
        ├── UnreadableRecord          the record the event needs has a field we cannot read
        ├── ContractAanvragerUnknown  a zakelijk klant and no person to be eerste aanvrager
        ├── KlantdossierDeleted       the only klantdossiers with the dossier number are deleted
        └── InternalError             a bug of ours; the event fails rather than the worker

Clients translate HTTP and transport failures into these at their boundary, so the
pipeline never sees an `httpx` exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.events import Operation
    from app.pipeline.apply import Applied, Step


class SettingsError(Exception):
    """A configuration variable is missing or malformed."""


class TopicSetupError(Exception):
    """A topic the worker needs does not exist and was not created; the message names it."""


class SyncError(Exception):
    """One event could not be synced.

    `writes` are the Elements writes the failed attempt made before it stopped: Elements
    holds them whatever happens next, so the result reports them. The pipeline puts
    them here as the error leaves it (`app.pipeline.apply.writes_kept`).
    """

    code = "sync_error"
    retryable = False
    writes: tuple[Operation, ...] = ()
    applied: Applied | None = None
    """Set when a step of a plan failed: the steps before it, all applied."""
    unsure: Step | None = None
    """The failed step when Elements may have applied it all the same (an answer lost to a
    5xx, a timeout or a bug of ours); None when Elements refused it (a 4xx writes nothing)."""


class RetryableError(SyncError):
    """A transient failure: the same request may succeed later, at the earliest after
    `retry_after_s` when the API said so (`Retry-After`)."""

    code = "retryable"
    retryable = True

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamUnavailable(RetryableError):
    """An API answered 5xx, timed out or could not be reached."""

    code = "upstream_unavailable"


class RateLimited(RetryableError):
    """Elements answered 429 for the per-second limit."""

    code = "rate_limited"


class StaleLocator(RetryableError):
    """A resource the worker remembered answered 404; the next attempt reads afresh."""

    code = "stale_locator"


class StateUnavailable(RetryableError):
    """The state topic did not take a record that must be durable before Elements is written."""

    code = "state_unavailable"


class OwnershipLost(RetryableError):
    """This replica no longer owns the dossier (its lease ran out): its record is not written,
    and the next attempt owns the dossier again and reads afresh."""

    code = "ownership_lost"


class LeaseWanted(OwnershipLost):
    """A live event, on this replica or another, waits for the dossier this backfill holds:
    the backfill lets it go at its next step boundary and tries again after it."""

    code = "lease_wanted"


class DailyBudgetExhausted(RetryableError):
    """The daily Elements request budget is spent until it resets."""

    code = "daily_budget_exhausted"


class BackfillReserveReached(DailyBudgetExhausted):
    """Only the share of the daily budget kept for live events is left: backfills wait."""

    code = "backfill_reserve_reached"


class PermanentError(SyncError):
    """Trying again gives the same answer."""

    code = "permanent"


class UpstreamRejected(PermanentError):
    """An API refused the request with a 4xx."""

    code = "upstream_rejected"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ValidationItem:
    """One entry of Elements' `_embedded.errors`."""

    path: str
    message: str


class ElementsValidationError(UpstreamRejected):
    """Elements rejected a payload with its 'Validatie fouten' body."""

    code = "elements_validation"

    def __init__(self, message: str, items: list[ValidationItem]) -> None:
        detail = "; ".join(f"{i.path or '/'}: {i.message}" for i in items)
        super().__init__(f"{message}: {detail}" if detail else message, status=400)
        self.items = items


class AuthenticationFailed(PermanentError):
    """An API refused our credentials."""

    code = "authentication_failed"


class GrantRefused(AuthenticationFailed):
    """Elements' token endpoint refused a grant; `oauth_error` is its OAuth 2 `error` code."""

    def __init__(self, message: str, *, status: int, oauth_error: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.oauth_error = oauth_error


class CustomerNotFound(PermanentError):
    """Neither ANVA nor the portal knows the customer."""

    code = "customer_not_found"


class CustomerIncomplete(PermanentError):
    """The customer is known but has no name for a klant."""

    code = "customer_incomplete"


class InvalidCustomerData(PermanentError):
    """A value Elements would refuse for its length; it is never sent."""

    code = "invalid_customer_data"


class InvalidFormField(PermanentError):
    """A submitted form field that is not what it names (an e-mail, one phone number)."""

    code = "invalid_form_field"


class ContractNotFound(PermanentError):
    """ANVA does not know the contract."""

    code = "contract_not_found"


class UnreadableRecord(PermanentError):
    """The upstream record this event needs has a field that cannot be read."""

    code = "unreadable_record"


class ContractAanvragerUnknown(PermanentError):
    """The dossier's klant is an organisation and ANVA names no person to apply for its contract."""

    code = "contract_aanvrager_unknown"


class KlantdossierDeleted(PermanentError):
    """Only deleted klantdossiers carry the dossier number: a person deleted it, a person decides."""

    code = "klantdossier_deleted"


class InternalError(PermanentError):
    """An unexpected exception while processing one event."""

    code = "internal_error"

    @classmethod
    def caused_by(cls, error: Exception) -> InternalError:
        """Named by the exception's type only: its text may hold data no result should carry."""
        return cls(f"internal error: {type(error).__name__}")
