"""Deployment files for running the marketplace beyond one machine, generated from the service catalog.

``python -m vigil.demo_marketplace.deploy.generate [OUT_DIR]`` rewrites ``docker-compose.yml``,
``compose/`` and ``k8s/`` (by default in this directory, where they are committed).
"""
