"""``consortia deliver``: the credit outbox and webhook delivery as their own process (when the
service runs with ``CONSORTIA_EMBEDDED_PROJECTION=0`` or ``CONSORTIA_EMBEDDED_DELIVERY=0``)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def cmd_deliver(args: argparse.Namespace) -> int:
    from api.delivery import DeliveryPolicy, DeliveryWorker
    from audit.store import open_registry
    from projections.credit_outbox import CreditOutboxRunner, catch_up, open_credit_store

    policy = DeliveryPolicy.from_env()
    if args.once:
        registry = open_registry(args.database)
        try:
            store = open_credit_store(args.database)
            position = catch_up(registry, store)
            worker = DeliveryWorker(store, policy)
            attempted = 0
            try:
                while True:
                    n = worker.run_once()
                    if not n:
                        break
                    attempted += n
            finally:
                worker.stop()
        finally:
            registry.close()
        print(f"outbox at position {position}; {attempted} delivery attempts made")
        return 0
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    worker_box: list[DeliveryWorker] = []

    def wake() -> None:
        if worker_box:
            worker_box[0].wake()

    with CreditOutboxRunner(args.database, on_enqueued=wake) as runner:
        worker = DeliveryWorker(runner.store, policy)
        worker_box.append(worker)
        worker.start()
        print(f"delivering credit events from outbox position "
              f"{runner.store.position(runner.app_name)}; Ctrl-C to stop", file=sys.stderr,
              flush=True)
        try:
            while not stop:
                runner.run_forever(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            worker.stop()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("deliver", help="queue credit events for webhook subscribers and push "
                                       "them (Standard Webhooks, with retries)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--once", action="store_true",
                   help="queue what is new, attempt every delivery due now, and exit")
    p.set_defaults(func=cmd_deliver)
