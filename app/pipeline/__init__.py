"""The sync itself: one entry point per event type, each read → plan → apply for one dossier.

Entry points (`customer`, `contract`, `form`, and `prefill` for the HTTP side) share a
`context.SyncContext` and return a `context.Synced` record. Modules group what changes
together: per event type its entry point (`customer`, `contract`, `form`) and its pure
plan (`customer_plan`, `contract_plan`); the Elements state of a dossier (`dossier`:
read, confirmed, remembered); the steps and applying them (`apply`); the pure `model`
and `address`. Pure code does no I/O and is tested without it.
"""
