"""The sync itself: one entry point per event type, each read → plan → apply for one dossier.

Entry points (`customer`, `contract`, `form`, and `prefill` for the HTTP side) share a
`context.SyncContext` and return a `context.Synced` record. They do I/O through
`resolve` (ANVA, portal), `current` (Elements reads) and `apply` (Elements writes);
everything between is pure and tested without I/O: `mapping`, `form_changes`,
`contract_mapping`, the plans (`plan`, `contract_plan`) made of `steps`, `limits`,
`model` and `address`.
"""
