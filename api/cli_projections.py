"""``consortia project``: run the projection runner as its own process, or rebuild the views."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def cmd_project(args: argparse.Namespace) -> int:
    from audit.store import open_registry
    from projections.projection import RegistryProjectionRunner, catch_up, open_view, rebuild

    if args.rebuild:
        position = rebuild(args.database)
        print(f"views rebuilt from position 0 to {position}")
        if args.once:
            return 0
    if args.once:
        registry = open_registry(args.database)
        try:
            position = catch_up(registry, open_view(args.database))
        finally:
            registry.close()
        print(f"views caught up to position {position}")
        return 0
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    with RegistryProjectionRunner(args.database) as runner:
        print(f"projecting from position {runner.registry_view.position(runner.app_name)}; "
              "Ctrl-C to stop", file=sys.stderr, flush=True)
        try:
            while not stop:
                runner.run_forever(timeout=0.5)
        except KeyboardInterrupt:
            pass
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("project", help="keep the read models up to date (or rebuild them)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--rebuild", action="store_true",
                   help="drop every view and rebuild it from position 0 first")
    p.add_argument("--once", action="store_true", help="catch up and exit instead of following")
    p.set_defaults(func=cmd_project)
