"""``vigil demo``: the marketplace story end to end, and the lead-time measurements behind it."""
