"""The publishing engine's decisions, as pure values (docs/reliability.md).

- `claim.py`: `Claim`, a post the engine holds in PUBLISHING.
- `settlement.py`: `Settlement`, what becomes of a claimed post, with the domain
  events it records.
- `outcomes.py`: the outcome table: what each X answer (domain/x_answers.py) means for
  a claimed post, and the retry, unknown and reconciler timings (`Timing`).
- `failure_streak.py`: when a run of final failures pauses the account's queue, and
  the `account.suspended` event that says why.

The publish queue (ports/publishing.py) only applies what these decide.
"""

from __future__ import annotations

from post_management.domain.publishing.claim import LEASE_EXPIRED, Claim
from post_management.domain.publishing.outcomes import Timing
from post_management.domain.publishing.settlement import Settlement

__all__ = ["LEASE_EXPIRED", "Claim", "Settlement", "Timing"]
