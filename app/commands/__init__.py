"""Operator commands: one-shot production commands beside the worker (`python -m app …`):
backfill, the plan dry run, redrive and results.

They read the one settings tree, never import the sandbox, print their answer on stdout
and their trouble on stderr.
"""
