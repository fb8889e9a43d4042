"""The publisher's stores outside the unit of work (media uploads, the spend meter):
the same answers from memory and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from post_management.domain.media import Media, MediaKind
from post_management.domain.x_spend import CallKind, Metered, Purpose
from tests.contract.builders import a_post, an_account, store
from tests.contract.conftest import World


def test_uploads_are_kept_per_account_and_a_later_one_replaces_an_older(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    store(world.uow, account, other)
    item = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 5, now)
    with world.uow() as uow:
        uow.media.add(item, b"\x89PNG!")
        uow.commit()
    assert world.uploads.content(item.id) == (b"\x89PNG!", "image/png")
    assert world.uploads.content(uuid.uuid4()) is None
    assert world.uploads.uploaded(account.id, [item.id], now) == {}
    world.uploads.record(item.id, account.id, "900", now - timedelta(hours=30))
    assert world.uploads.uploaded(account.id, [item.id], now - timedelta(hours=23)) == {}
    world.uploads.record(item.id, account.id, "901", now)
    assert world.uploads.uploaded(account.id, [item.id], now - timedelta(hours=23)) == {
        item.id: "901"
    }
    assert world.uploads.uploaded(other.id, [item.id], now - timedelta(hours=23)) == {}
    assert world.uploads.uploaded(account.id, [], now) == {}


def test_the_meter_records_spend_and_reads_the_months_budget(world: World) -> None:
    now = world.time.now()
    budgeted = an_account(now, x_monthly_budget_micros=1_000_000_000)
    free = an_account(now)
    queued = a_post(budgeted, now, due_in=timedelta(minutes=1))
    store(world.uow, budgeted, free, queued)
    assert world.meter.budget(free.id) is None
    before = world.meter.budget(budgeted.id)
    assert before is not None
    assert (before.budget_micros, before.spent_micros) == (1_000_000_000, 0)
    assert before.reserved_micros > 0
    create = Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", budgeted.id, queued.id)
    world.meter.record([create, create])
    world.meter.record([])
    after = world.meter.budget(budgeted.id)
    assert after is not None
    assert after.spent_micros == 2 * world.meter.prices.unit_price(CallKind.POST_CREATE, now)
