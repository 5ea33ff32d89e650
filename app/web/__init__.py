"""The HTTP side: the MijnKlantportaal forms ingress, health, readiness, metrics and AsyncAPI."""
