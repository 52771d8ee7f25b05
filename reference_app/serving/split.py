"""The traffic split of a canary release: which variant, champion or challenger, answers a request.

A canary sends a small share of live traffic (Seldon's `traffic: 10` on a predictor, Istio's
`weight`, the Gateway API's `backendRefs[].weight`) to the new version. The router
(`serving.router`, `fraudlab route`) asks `choose_variant` for every inference request; the
decision is a function of a routing key and the challenger's share only:

- deterministic and sticky: the same key always lands on the same variant, in every router
  replica and after every restart, so a card's transactions are all judged by one model during
  the experiment (a customer never sees the two models disagree on consecutive payments, and the
  per-variant metrics compare two disjoint populations); a client that retries a request with the
  same key reaches the same version;
- stable across processes: the key's bucket is a cryptographic hash (SHA-256), never Python's
  `hash()`, which is salted per process (PYTHONHASHSEED) and would send a key to different
  variants in two replicas;
- monotone: a key on the challenger stays there when its share grows (10 → 25 → 100), so a
  promotion only moves cards from the champion to the challenger, never back and forth.

This is consistent hashing of keys into 10,000 buckets, as feature-flag systems bucket users
(e.g. Unleash's and LaunchDarkly's percentage rollouts hash a user key with a salt into buckets).

Example:
    >>> choose_variant("card-42", challenger_traffic=0)
    'champion'
    >>> choose_variant("card-42", challenger_traffic=100)
    'challenger'
"""

from __future__ import annotations

import hashlib

from ..labcode import Exercise

CHAMPION = "champion"
CHALLENGER = "challenger"
VARIANTS = (CHAMPION, CHALLENGER)
"""The served variants, as the registry's aliases and the SeldonDeployment's predictors name them."""
BUCKETS = 10_000
"""Buckets of the key space: a share is set in steps of 0.01 percentage point."""

SPLIT_EXERCISE = Exercise(lab=10, module="split", function="choose_variant")
"""Lab 10: the learner's `choose_variant` (labs/10-deployment-patterns/starter/split.py) stands in
for this module's when `FRAUD_LAB_CODE` has it (`labcode`)."""


# --8<-- [start:bucket]
def traffic_bucket(key: str) -> int:
    """The bucket of a routing key, in [0, BUCKETS): the first 8 bytes of the SHA-256 digest of
    its UTF-8 bytes, as a big-endian unsigned integer, modulo `BUCKETS`.

    Example:
        >>> traffic_bucket("card-42") == traffic_bucket("card-42")
        True
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


# --8<-- [end:bucket]


# --8<-- [start:choose]
def choose_variant(key: str, challenger_traffic: float) -> str:
    """The variant that answers the request with routing key `key`.

    Args:
        key: the routing key (the card, or the request's id; see `serving.router.routing_key`).
        challenger_traffic: the challenger's share of requests in percent, 0 … 100 (the
            SeldonDeployment's `traffic` of predictor challenger).

    Returns:
        "challenger" when the key's bucket falls below the challenger's share of the buckets
        (`traffic_bucket(key) < challenger_traffic / 100 * BUCKETS`), else "champion".

    Raises:
        ValueError: `challenger_traffic` is not a number in [0, 100].
    """
    if not 0 <= challenger_traffic <= 100:  # NaN fails both comparisons
        raise ValueError(
            f"challenger_traffic must be within 0 … 100 percent, not {challenger_traffic!r}"
        )
    if traffic_bucket(key) < challenger_traffic / 100 * BUCKETS:
        return CHALLENGER
    return CHAMPION


# --8<-- [end:choose]
