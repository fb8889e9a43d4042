"""Every google.rpc.ErrorInfo reason this service returns, declared once.

The values are part of the API contract (clients branch on them): never rename
one. docs/errors.md lists each with its status and when it is returned;
tests/unit/test_error_reasons.py keeps the two in step and finds literals.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # Defaults of the error classes (domain/errors.py), when a raise names no reason.
    DOMAIN_ERROR = "DOMAIN_ERROR"  # an error of no more specific class (not raised today)
    INVALID_ARGUMENT = "INVALID_ARGUMENT"  # a post's text or content checks fail
    INVALID_FIELD = "INVALID_FIELD"  # one field is invalid, no finer reason given
    NOT_FOUND = "NOT_FOUND"  # a resource is missing, no finer reason given
    ALREADY_EXISTS = "ALREADY_EXISTS"  # a resource exists already, no finer reason given
    FAILED_PRECONDITION = "FAILED_PRECONDITION"  # state forbids it, no finer reason given
    ABORTED = "ABORTED"  # a concurrent change won, no finer reason given
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the caller may not, no finer reason given
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no valid identity, no finer reason given
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"  # a quota is used up, no finer reason given
    UNAVAILABLE = "UNAVAILABLE"  # a dependency is down, no finer reason given

    # Authentication and authorisation.
    TOKEN_MISSING = "TOKEN_MISSING"  # no 'authorization: Bearer' metadata on a call
    TOKEN_INVALID = "TOKEN_INVALID"  # the bearer token is not a valid token of this service
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # the bearer token's exp has passed
    TOKEN_TOO_LONG_LIVED = "TOKEN_TOO_LONG_LIVED"  # the token lives longer than accepted
    WEBHOOK_SIGNATURE_INVALID = "WEBHOOK_SIGNATURE_INVALID"  # an X webhook body is unsigned
    FOREIGN_USER = "FOREIGN_USER"  # the caller acts for a user that is not theirs
    FOREIGN_ACCOUNT = "FOREIGN_ACCOUNT"  # the account belongs to another user
    FOREIGN_POST = "FOREIGN_POST"  # the post belongs to another user
    FOREIGN_RESOURCE = "FOREIGN_RESOURCE"  # a post or campaign belongs to another user
    ERASE_NOT_ALLOWED = "ERASE_NOT_ALLOWED"  # erasure asked by neither admin nor service
    RATE_LIMITED = "RATE_LIMITED"  # the caller sent too many requests in the window

    # Missing resources.
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"  # no account with that id
    POST_NOT_FOUND = "POST_NOT_FOUND"  # no post with that id
    CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"  # no campaign with that id
    MEDIA_NOT_FOUND = "MEDIA_NOT_FOUND"  # no media with that id

    # Malformed requests.
    MISSING_FIELD = "MISSING_FIELD"  # a required field is empty
    MALFORMED_ID = "MALFORMED_ID"  # an id is not a UUID or not printable / too long
    UNKNOWN_ENUM = "UNKNOWN_ENUM"  # an enum field holds a value this service does not know
    UNKNOWN_PRIORITY = "UNKNOWN_PRIORITY"  # a priority name is not a priority
    UNKNOWN_TIMEZONE = "UNKNOWN_TIMEZONE"  # a time zone is not an IANA name
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"  # an account id is not an account of this user
    FIELD_NOT_WRITABLE = "FIELD_NOT_WRITABLE"  # update_mask names a field that cannot change
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"  # a list field holds more items than allowed
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"  # a batch holds more requests than allowed
    USER_MISMATCH = "USER_MISMATCH"  # a batch item names another user than the batch
    FILTER_TOO_LONG = "FILTER_TOO_LONG"  # the reason filter of a listing is too long
    INVALID_STATE_FILTER = "INVALID_STATE_FILTER"  # a states filter names a state not allowed
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"  # a page token is not one of this service
    PAGE_TOKEN_MISMATCH = "PAGE_TOKEN_MISMATCH"  # a page token belongs to a different query
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"  # a request_id was used for a different request
    INVALID_TIMESTAMP = "INVALID_TIMESTAMP"  # a protobuf Timestamp is out of range
    INVALID_DATE = "INVALID_DATE"  # a date is not RFC 3339 or out of the allowed window
    INVALID_DATE_RANGE = "INVALID_DATE_RANGE"  # from/to are reversed or span too long
    INVALID_SCHEDULED_TIME = "INVALID_SCHEDULED_TIME"  # scheduled_for is not RFC 3339
    SCHEDULED_TIME_IN_PAST = "SCHEDULED_TIME_IN_PAST"  # scheduled_for is in the past
    SCHEDULED_TIME_TOO_FAR = "SCHEDULED_TIME_TOO_FAR"  # scheduled_for is beyond the horizon
    NONEXISTENT_LOCAL_TIME = "NONEXISTENT_LOCAL_TIME"  # a local time a DST gap skips
    AFTER_TOO_FAR = "AFTER_TOO_FAR"  # a next-free-slot search starts beyond the horizon
    SLOT_POLICY_WITH_TIME = "SLOT_POLICY_WITH_TIME"  # slot_policy given with scheduled_for
    INVALID_POSTING_RULES = "INVALID_POSTING_RULES"  # an account's posting rules are invalid
    INVALID_MEDIA = "INVALID_MEDIA"  # a post's media or attachments are invalid
    CRC_TOKEN_MISSING = "CRC_TOKEN_MISSING"  # an X webhook CRC check has no crc_token
    CRC_TOKEN_INVALID = "CRC_TOKEN_INVALID"  # an X webhook crc_token is malformed
    BAD_WEBHOOK = "BAD_WEBHOOK"  # an X webhook body is not a JSON object

    # Conflicts with existing state.
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"  # the X account is already registered for the user
    ETAG_MISMATCH = "ETAG_MISMATCH"  # the etag sent is not the resource's current one
    CONCURRENT_MODIFICATION = "CONCURRENT_MODIFICATION"  # a concurrent write won the race

    # The resource's state forbids the request.
    ACCOUNT_HAS_ACTIVE_POSTS = "ACCOUNT_HAS_ACTIVE_POSTS"  # removing an account with live posts
    INVALID_POST_STATE = "INVALID_POST_STATE"  # the post's state does not allow the action
    POST_NOT_EDITABLE = "POST_NOT_EDITABLE"  # editing a post that is no longer editable
    POST_NOT_DELETABLE = "POST_NOT_DELETABLE"  # deleting a post that cannot be deleted
    SCHEDULED_FOR_LATER = "SCHEDULED_FOR_LATER"  # publishing now a post scheduled for later
    SEGMENTS_ALREADY_PUBLISHED = "SEGMENTS_ALREADY_PUBLISHED"  # changing thread parts on X
    SCHEDULE_CONFLICT = "SCHEDULE_CONFLICT"  # the time breaks posting rules, policy REJECT
    NO_FREE_TIME = "NO_FREE_TIME"  # policy MOVE found no free time within the horizon
    NO_FREE_SLOT = "NO_FREE_SLOT"  # no slot within the window fits the posting rules
    INVALID_ACCOUNT_RULES = "INVALID_ACCOUNT_RULES"  # the stored posting rules are invalid
    DUPLICATE_CONTENT = "DUPLICATE_CONTENT"  # the same text is already on the account
    CONTENT_POLICY = "CONTENT_POLICY"  # the account's content policy refuses the text
    USER_ERASED = "USER_ERASED"  # creating something for a user whose data was erased
    POSTS_BEING_PUBLISHED = "POSTS_BEING_PUBLISHED"  # erasing while posts are publishing
    WEBHOOKS_DISABLED = "WEBHOOKS_DISABLED"  # X webhooks are off (no consumer secret)

    # Quotas.
    MEDIA_QUOTA_EXCEEDED = "MEDIA_QUOTA_EXCEEDED"  # the user's media quota is used up

    # The service and its dependencies.
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"  # PostgreSQL cannot be reached
    NOT_SERVING = "NOT_SERVING"  # the service is shutting down
    NOT_READY = "NOT_READY"  # a readiness check fails
    STREAMING_NOT_SERVED = "STREAMING_NOT_SERVED"  # a streaming method was called
    INTERNAL = "INTERNAL"  # an unexpected failure; details are only in the logs
