"""Alert lifecycle, incident grouping, Alertmanager delivery and generated Prometheus rules."""
