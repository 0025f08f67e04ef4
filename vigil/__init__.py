"""vigil: notice marketplace trouble before customers feel it."""

__version__ = "0.1.0"
