"""Run one replica of a marketplace service: ``python -m vigil.demo_marketplace.serve SERVICE --port P``."""

from __future__ import annotations

import argparse

import uvicorn

from vigil.demo_marketplace.common import logs
from vigil.demo_marketplace.common.app import create_app
from vigil.demo_marketplace.common.settings import ServiceSettings


def serve(service: str, port: int, replica: str = "0", host: str = "127.0.0.1") -> None:
    settings = ServiceSettings(service=service, replica=replica)
    logs.configure(settings.service, settings.replica, settings.log_dir)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replica", default="0")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve(args.service, args.port, args.replica, args.host)


if __name__ == "__main__":
    main()
