"""Streaming anomaly detectors for latency, queue backlog, errors and log patterns."""
