"""Operator commands: backfill, dry run, redrive, results — each a function a test can call."""
