"""Lab 10 exercise: the traffic split of a canary, which variant answers a request.

The router in front of the two served versions (`fraudlab route serve`; the Deployment
`traffic-router` on the cluster) asks `choose_variant` for every inference request, with the
request's routing key (the card, from the client's X-Routing-Key header, else the V2 request's
id) and the challenger's share of traffic in percent (the split file, 10 at first). Its answer
is the variant whose model scores the request.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from the ConfigMap
`lab-code-10-…` (the router's pod on the cluster), your function is the one the router runs.
The router tries it when it starts: a function still marked TODO keeps it from starting.

Check your work: `.venv/bin/fraudlab exercise check 10 --code labs/10-deployment-patterns/starter`.
"""

import hashlib  # noqa: F401 - yours to use (TODO 2)

BUCKETS = 10_000
"""Buckets of the key space: the share is set in steps of 0.01 percentage point."""


def choose_variant(key: str, challenger_traffic: float) -> str:
    """The variant that answers the request with routing key `key`: "champion" or "challenger".

    Args:
        key: the request's routing key (e.g. "card-4711").
        challenger_traffic: the challenger's share of requests in percent, 0 … 100.

    Returns:
        "challenger" when the key's bucket is below `challenger_traffic / 100 * BUCKETS`, else
        "champion". The bucket: the first 8 bytes of the SHA-256 digest of the key's UTF-8
        bytes, read as a big-endian unsigned integer, modulo BUCKETS.

    Raises:
        ValueError: `challenger_traffic` outside 0 … 100.
    """
    # TODO(lab-10): 1. refuse a share outside 0 … 100 with a ValueError that says so.
    # TODO(lab-10): 2. the key's bucket: hashlib.sha256 of the key's UTF-8 bytes, the first 8
    #   bytes of its digest as a big-endian integer (int.from_bytes), modulo BUCKETS. Not
    #   Python's hash(): it changes from one process to the next (PYTHONHASHSEED), so two router
    #   replicas would send one card to two models.
    # TODO(lab-10): 3. "challenger" when the bucket is below challenger_traffic / 100 * BUCKETS,
    #   else "champion" (so raising the share only moves keys to the challenger).
    raise NotImplementedError("TODO(lab-10): choose_variant")
