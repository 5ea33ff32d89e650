"""The Kafka side: consume (per-key order, offsets, flow control), report (results, dead letters)."""
