"""vigil's runtime: collect signals on a schedule, score them, serve what it sees."""
