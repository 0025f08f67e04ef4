"""The bundled demo marketplace: services, load generator and fault injection."""
