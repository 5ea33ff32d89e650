"""The sync itself: one entry point per event type, each read → plan → apply for one dossier.

Entry points (`customer`, `contract`, `form`, and `prefill` for the HTTP side) share a
`context.SyncContext` and return a `context.Synced` record. Modules group what changes
together: per event type its entry point (`customer`, `contract`, `form`) and its pure
plan (`customer_plan`, `contract_plan`); what upstream says of a customer (`upstream`);
one dossier's sync, top to bottom (`dossier.sync_dossier`), with what it reads of Elements
(`reads`) and the record it leaves (`dossier_record`, pure); the steps and applying them
(`apply`). Pure code does no I/O and is tested without it. The words are in
docs/design/glossary.md.
"""
