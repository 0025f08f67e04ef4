"""The marketplace load generator: Locust users, load shapes and a subprocess runner.

Importing this package never imports Locust (which monkey-patches the process with gevent); the
Locust users live in ``locustfile.py`` and run in a separate process started by :mod:`.runner`.
"""

from vigil.demo_marketplace.loadgen.runner import (
    LoadError,
    LoadResult,
    RouteStats,
    run_load,
    start_load,
    stop_load,
)
from vigil.demo_marketplace.loadgen.shapes import (
    SHAPES,
    BlackFriday,
    Diurnal,
    Shape,
    Steady,
    Target,
    make_shape,
)

__all__ = [
    "SHAPES",
    "BlackFriday",
    "Diurnal",
    "LoadError",
    "LoadResult",
    "RouteStats",
    "Shape",
    "Steady",
    "Target",
    "make_shape",
    "run_load",
    "start_load",
    "stop_load",
]
