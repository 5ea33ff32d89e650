"""The values every layer speaks of: addresses, the customer as it should be, a dossier as
Elements holds it, a contract as the worker knows it (pure, no I/O).

They sit below the pipeline and the durable memory alike: the pipeline plans with them,
and a dossier's record (`app.state.record`) keeps them.
"""
