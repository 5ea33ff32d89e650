"""elements-sync: keeps Faster Forward Elements in step with ANVA Hub and MijnKlantportaal."""

__version__ = "0.1.0"
