"""``consortia deliver``: the credit outbox and webhook delivery as their own process (when the
service runs with ``CONSORTIA_EMBEDDED_PROJECTION=0`` or ``CONSORTIA_EMBEDDED_DELIVERY=0``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_deliver(args: argparse.Namespace) -> int:
    from api.cli_projections import until_terminated
    from api.delivery import DeliveryPolicy, DeliveryWorker, EmbeddedDelivery
    from audit.store import open_registry, registry_env
    from domain.registry import Registry
    from projections.credit_outbox import catch_up, open_credit_store

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
    # Supervised, as in the service: a database restart cuts the runner's connections and it is
    # started again, resuming after the last event it enqueued.
    delivery = EmbeddedDelivery(registry_env(args.database), policy).start()
    print(f"delivering credit events from outbox position "
          f"{delivery.store.position(Registry.name)}; Ctrl-C to stop", file=sys.stderr,
          flush=True)
    try:
        until_terminated()
    finally:
        delivery.stop()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("deliver", help="queue credit events for webhook subscribers and push "
                                       "them (Standard Webhooks, with retries)")
    p.add_argument("--database", metavar="URL", default=argparse.SUPPRESS)
    p.add_argument("--once", action="store_true",
                   help="queue what is new, attempt every delivery due now, and exit")
    p.set_defaults(func=cmd_deliver)
