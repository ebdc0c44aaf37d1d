"""A worker app whose keyed limit names an argument its task lacks (``-A tests.ratelimit.badkeyapp``)."""

from __future__ import annotations

import json
import os

from celery import Celery

from celery_jobs_ext import GuardedTask

app = Celery("tests.ratelimit.badkeyapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))


@app.task(base=GuardedTask, name="tests.bad_key", rate_limit_key="customer", rate_limit_per_key="10/m")
def bad_key(customer_id: str) -> None:
    return None
