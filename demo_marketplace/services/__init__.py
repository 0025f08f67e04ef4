"""One module per marketplace service: its ``router`` and, for consumers, ``start(resources)``."""
