"""What every marketplace service shares: settings, app factory, telemetry, clients, faults."""
