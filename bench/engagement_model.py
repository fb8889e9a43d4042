"""Evaluation of the engagement model: time-ordered hold-out against the median.

    python -m bench.engagement_model [--posts 400] [--seed 1]

prints, for each data set and target, the hold-out's posts, the model's and the
baseline's mean absolute error, the gain, the interval coverage and whether the
model counts as better (docs/analytics.md has a run's figures):

- `structured`: synthetic posts whose impressions and engagement rate follow a known
  formula of the features plus noise (`synthetic_history(structured=True)`, below);
- `noise`: the same features, targets drawn independently of them: the model must
  not claim a gain;
- `emulator`: posts seeded on the bundled X emulator over 60 days and read back
  through the X API (tweepy) at maturity. The emulator's counts are a hash of the
  post id, so they carry no structure either.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner
from post_management.domain.engagement_features import Draft, PastPost, history_rows
from post_management.domain.media import MediaKind
from post_management.services.analytics.engagement_fitting import TARGETS, HoldOut, fit_target

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
MEDIA_CHOICES: list[tuple[MediaKind | None, float]] = [
    (None, 0.5),
    (MediaKind.IMAGE, 0.3),
    (MediaKind.GIF, 0.1),
    (MediaKind.VIDEO, 0.1),
]
# The known structure of the synthetic set (log impressions and rate effects).
MEDIA_LIFT = {None: 0.0, MediaKind.IMAGE: 0.4, MediaKind.GIF: 0.3, MediaKind.VIDEO: 0.7}


def _hour_lift(local_hour: int) -> float:
    """Midday best, nights worst: +0.6 at 12-14, -0.8 at 0-5."""
    if 12 <= local_hour <= 14:
        return 0.6
    if local_hour <= 5:
        return -0.8
    return 0.0


def _text(rng: random.Random, links: int, hashtags: int, mentions: int, question: bool) -> str:
    words = ["launch", "update", "today", "team", "new", "read", "thanks", "week"]
    body = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
    body += "".join(f" https://ex.am/p{rng.randint(1, 99)}" for _ in range(links))
    body += "".join(f" #tag{rng.randint(1, 9)}" for _ in range(hashtags))
    body += "".join(f" @user{rng.randint(1, 9)}" for _ in range(mentions))
    return body + ("?" if question else ".")


def synthetic_history(
    posts: int, seed: int, *, structured: bool = True, account_id: str = "synthetic"
) -> list[PastPost]:
    """`posts` posts about 8 hours apart (UTC account), oldest first.

    Structured: log(impressions) = log(2000) + media lift (image 0.4, GIF 0.3, video
    0.7) + 0.3 per link + hour lift (+0.6 at 12-14 h, -0.8 at 0-5 h) - 0.3 on weekends
    + N(0, 0.35); rate = 0.02 + 0.015 if a question + 0.01 with hashtags - 0.008 with a
    link + N(0, 0.004), at least 0. Noise: log(impressions) ~ N(log(2000), 0.6) and
    rate ~ N(0.03, 0.01), independent of everything.
    """
    rng = random.Random(seed)
    at = START
    history = []
    for _ in range(posts):
        at += timedelta(hours=rng.uniform(4, 12))
        links = 1 if rng.random() < 0.3 else 0
        hashtags = rng.choice([0, 0, 1, 2, 3])
        mentions = rng.choice([0, 0, 0, 1, 2])
        question = rng.random() < 0.2
        media = rng.choices([m for m, _ in MEDIA_CHOICES], [w for _, w in MEDIA_CHOICES])[0]
        text = _text(rng, links, hashtags, mentions, question)
        if structured:
            log_impressions = (
                math.log(2000)
                + MEDIA_LIFT[media]
                + 0.3 * links
                + _hour_lift(at.hour)
                - (0.3 if at.weekday() >= 5 else 0.0)
                + rng.gauss(0, 0.35)
            )
            rate = 0.02 + 0.015 * question + 0.01 * (hashtags > 0) - 0.008 * links
            rate = max(rate + rng.gauss(0, 0.004), 0.0)
        else:
            log_impressions = rng.gauss(math.log(2000), 0.6)
            rate = max(rng.gauss(0.03, 0.01), 0.0)
        history.append(
            PastPost(
                account_id=account_id,
                timezone="UTC",
                draft=Draft(text, media, at),
                impressions=max(1, round(math.exp(log_impressions))),
                engagement_rate=rate,
            )
        )
    return history


def evaluate(history: Sequence[PastPost]) -> dict[str, HoldOut]:
    """Each target's hold-out figures for the account model on this history."""
    learner = GradientBoostingLearner()
    rows = history_rows(history)
    results = {}
    for target in TARGETS:
        values = [
            float(p.impressions) if target.name == "impressions" else p.engagement_rate
            for p in history
        ]
        results[target.name] = fit_target(learner, target, rows, values).holdout
    return results


def emulator_history(posts: int, seed: int) -> list[PastPost]:
    """Posts seeded on a local emulator at ages spread over 60 days, read back through
    the X API at maturity (the emulator's counts saturate within hours)."""
    from post_management.adapters.x import TweepyXApi, XClientSettings
    from post_management.ports.x_api import PostsFound
    from x_emulator import EmulatorControl, EmulatorThread

    rng = random.Random(seed)
    with EmulatorThread(host="127.0.0.1", port=0) as server:
        control = EmulatorControl(server.base_url)
        api = TweepyXApi(
            XClientSettings(
                consumer_key="k",
                consumer_secret="s",
                bearer_token="b",
                base_url=server.base_url,
            )
        )
        try:
            control.reset()
            author = str(control.register_user("evaluation-token")["id"])
            now = datetime.fromtimestamp(control.now(), UTC)
            seeded = []
            for index in range(posts):
                age = timedelta(days=60) * (1 - index / posts) + timedelta(days=1)
                links, hashtags = int(rng.random() < 0.3), rng.choice([0, 1, 2])
                text = _text(rng, links, hashtags, rng.choice([0, 1]), rng.random() < 0.2)
                text = f"{text} {index}"  # the emulator refuses duplicate text
                post = control.seed_post(author, text, age.total_seconds())
                seeded.append((str(post["id"]), text, now - age))
            found: dict[str, tuple[int, float]] = {}
            for start in range(0, len(seeded), 100):
                outcome = api.lookup_posts(None, [s[0] for s in seeded[start : start + 100]])
                assert isinstance(outcome, PostsFound), outcome
                for x_post in outcome.posts:
                    metrics = x_post.metrics
                    assert metrics is not None
                    engagements = (
                        metrics.likes
                        + metrics.reposts
                        + metrics.replies
                        + metrics.quotes
                        + (metrics.bookmarks or 0)
                    )
                    rate = engagements / metrics.impressions if metrics.impressions else 0.0
                    found[x_post.id] = (metrics.impressions, rate)
        finally:
            api.close()
            control.close()
    return [
        PastPost("emulator", "UTC", Draft(text, None, at), found[x_id][0], found[x_id][1])
        for x_id, text, at in seeded
        if found.get(x_id, (0, 0.0))[0] > 0
    ]


@dataclass(frozen=True)
class Row:
    data: str
    target: str
    holdout: HoldOut


def run(posts: int, seed: int, *, emulator: bool = True) -> list[Row]:
    sets = {
        "structured": synthetic_history(posts, seed, structured=True),
        "noise": synthetic_history(posts, seed, structured=False),
    }
    if emulator:
        sets["emulator"] = emulator_history(posts, seed)
    return [
        Row(name, target, holdout)
        for name, history in sets.items()
        for target, holdout in evaluate(history).items()
    ]


def format_rows(rows: Sequence[Row]) -> str:
    lines = [
        "| data | target | hold-out posts | model MAE | median MAE | gain | "
        "80 % interval coverage | median's 10-90 % coverage | model used |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        h = row.holdout
        digits = 0 if row.target == "impressions" else 4
        lines.append(
            f"| {row.data} | {row.target} | {h.posts} | {h.mae:.{digits}f} | "
            f"{h.baseline_mae:.{digits}f} | {h.gain:+.1%} | {h.coverage:.0%} | "
            f"{h.baseline_coverage:.0%} | {'yes' if h.beats_baseline else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(format_rows(run(args.posts, args.seed)))


if __name__ == "__main__":
    main()
