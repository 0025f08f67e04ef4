"""Grafana dashboards as code (grafanalib), provisioning files and the dashboard build."""
