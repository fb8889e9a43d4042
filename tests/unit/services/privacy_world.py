"""The memory adapters with keyed pseudonyms and the privacy use case over them: the
set-up test_privacy.py and test_privacy_jobs.py share. Rows are built with
tests/contract/builders.py's builders."""

from __future__ import annotations

import secrets
from datetime import datetime

from post_management.adapters.memory.composition import MemoryAdapters, memory_adapters
from post_management.domain.account import Account
from post_management.domain.post import Post, PostState
from post_management.domain.privacy import Pseudonyms
from post_management.services.privacy.privacy import PrivacyService
from tests.contract.builders import a_post, store


class PrivacyWorld:
    def __init__(self, start: datetime) -> None:
        self.pseudonyms = Pseudonyms(secrets.token_bytes(32))
        self.adapters: MemoryAdapters = memory_adapters(start, self.pseudonyms)
        self.store = self.adapters.store
        self.clock = self.adapters.settable_clock
        self.privacy = PrivacyService(
            self.adapters.async_uow, self.adapters.privacy, self.clock, self.pseudonyms
        )

    def stored_post(self, account: Account, state: PostState, **fields: object) -> Post:
        """A post of `account` in `state`, created now and stored, scheduled for no time
        unless `fields` say otherwise."""
        post = a_post(account, self.clock.now(), due_in=None, state=state, **fields)
        store(self.adapters.uow, post)
        return post
