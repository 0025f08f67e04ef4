"""Signal collectors: the Prometheus HTTP API, /metrics scraping and Elasticsearch logs."""
