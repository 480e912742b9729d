"""``consortia project``: run the projection runner as its own process, or rebuild the views."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Any


def cmd_project(args: argparse.Namespace) -> int:
    from audit.store import open_registry
    from projections.projection import catch_up, open_view, rebuild

    if args.rebuild:
        position = rebuild(args.database, workers=args.workers)
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
    from audit.store import registry_env
    from domain.registry import Registry
    from projections.projection import supervised_projection_runner

    view = open_view(args.database)
    print(f"projecting from position {view.position(Registry.name)}; Ctrl-C to stop",
          file=sys.stderr, flush=True)
    # Supervised, as in the service: started again after a database restart.
    with supervised_projection_runner(registry_env(args.database)):
        until_terminated()
    return 0


def until_terminated() -> None:
    """Block until SIGTERM (a process supervisor stopping this worker) or Ctrl-C."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.suppress(KeyboardInterrupt):
        while not stopping.wait(0.5):
            pass


def register(sub: Any) -> None:
    p = sub.add_parser("project", help="keep the read models up to date (or rebuild them)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--rebuild", action="store_true",
                   help="drop every view and rebuild it from position 0 first")
    p.add_argument("--once", action="store_true", help="catch up and exit instead of following")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="processes that fold a large ledger in a rebuild (default: one per core, "
                        "at most 4; 1 = this process only)")
    p.set_defaults(func=cmd_project)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of processes, 1 or more: {text!r}")
    return value
