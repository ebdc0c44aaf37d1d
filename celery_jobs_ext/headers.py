"""The message headers the extension reads and writes, by name; this module imports nothing.

Every concern that needs another's header imports the name from here, not the concern
itself (canvas once imported the dead-letter queue and the timeouts for two strings).
"""

#: A per-call timeout in seconds (``JobSignature.timeout``, ``apply_async(timeout=...)``).
TIMEOUT_HEADER = "jobs_timeout"
#: On a replayed message: the ``dlq_id`` of the dead-letter entry it was replayed from.
REPLAYED_FROM = "dlq_replayed_from"
#: On a message published by a replayed task or its descendants: the replay it descends from.
GENERATION_HEADER = "jobs_generation"

#: Every dead-letter header starts with this; a replay drops them (except :data:`REPLAYED_FROM`).
DLQ_PREFIX = "dlq_"
#: The dead-letter entry's own headers.
DLQ_ID = "dlq_id"
DLQ_REASON = "dlq_reason"
DLQ_TIMESTAMP = "dlq_timestamp"
DLQ_ATTEMPTS = "dlq_attempts"
DLQ_EXCEPTION = "dlq_exception"
DLQ_TRACEBACK = "dlq_traceback"
#: Where a dead-lettered task came from, and its priority there.
ORIGINAL_QUEUE = "original_queue"
ORIGINAL_PRIORITY = "original_priority"

__all__ = [
    "DLQ_ATTEMPTS",
    "DLQ_EXCEPTION",
    "DLQ_ID",
    "DLQ_PREFIX",
    "DLQ_REASON",
    "DLQ_TIMESTAMP",
    "DLQ_TRACEBACK",
    "GENERATION_HEADER",
    "ORIGINAL_PRIORITY",
    "ORIGINAL_QUEUE",
    "REPLAYED_FROM",
    "TIMEOUT_HEADER",
]
