# Kombu's filesystem transport is partly annotated: its helpers are untyped and its
# abstract channel declares _put/_get with other parameter names.
# mypy: disable-error-code="no-untyped-call,override"
"""The demo's embedded broker: Kombu's filesystem transport with atomic publish and claim.

Kombu's own filesystem transport creates a message file (``open(name, "wb")``) before it
locks and writes it, and its consumers move and read whatever file they find, so a consumer
can read an empty or half-written file; the ``JSONDecodeError`` that follows is fatal to a
Celery worker. Its exchange table is written the same way, and a consumer claims a message
with ``shutil.move`` into the system's temporary folder, which is a copy and a delete (two
consumers can both copy it) when that folder is on another file system.

Here every write goes to a name no consumer looks at and is then renamed into place, and a
consumer claims a message by renaming it inside its own folder: on POSIX a rename is atomic,
so a reader sees a whole file or none, and exactly one consumer wins each message. Each
consumer also keeps the sorted listing of a queue's folder and lists it again only when that
is used up, instead of listing and sorting the whole folder for every message.

Use it with ``broker_url="filesystem://"`` and ``broker_transport=TRANSPORT``, plus the
usual filesystem options (:func:`transport_options`). It is a demo and single-machine
broker: a message claimed by a process that is then killed is lost, as with Kombu's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

#: The value for Celery's ``broker_transport`` setting.
TRANSPORT = "celery_jobs_ext.demo.broker:Transport"

#: Names that start with this are being written or claimed: no consumer reads them.
_HIDDEN = "~"


def transport_options(folder: Path, polling_interval: float = 0.05) -> dict[str, Any]:
    """Filesystem transport options for a broker kept in ``folder`` (created if missing)."""
    messages = folder / "messages"
    for sub in (messages, folder / "processed", folder / "control"):
        sub.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": polling_interval,
    }


def _write_atomically(path: Path | str, data: bytes) -> None:
    """Write ``data`` under a hidden name in the same folder, then rename it to ``path``."""
    path = Path(path)
    temporary = path.with_name(f"{_HIDDEN}{uuid.uuid4().hex}.part")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class Channel(filesystem.Channel):
    """A filesystem channel whose messages and exchange tables appear whole or not at all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listings: dict[str, deque[str]] = {}

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # Kombu's name: creation time first, so a sorted listing is (roughly) FIFO.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        try:
            _write_atomically(os.path.join(self.data_folder_out, name), dumps(payload).encode())
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to {self.data_folder_out!r}") from exc

    def _get(self, queue: str) -> Any:
        folder = self.data_folder_in
        listing = self._listings.get(queue)
        fresh = not listing
        while True:
            if not listing:
                listing = self._listings[queue] = deque(self._listed(queue))
            while listing:
                name = listing.popleft()
                claimed = os.path.join(folder, f"{_HIDDEN}{os.getpid()}-{name}")
                try:
                    os.rename(os.path.join(folder, name), claimed)
                except FileNotFoundError:
                    continue  # another consumer claimed it first
                try:
                    with open(claimed, "rb") as file:
                        payload = file.read()
                    if self.store_processed:
                        os.replace(claimed, os.path.join(self.processed_folder, name))
                    else:
                        os.unlink(claimed)
                except OSError as exc:
                    raise ChannelError(f"Cannot read message {name!r} from queue") from exc
                return loads(payload)
            if fresh:
                raise Empty()
            fresh = True  # the cached listing is used up: look at the folder once more

    def _listed(self, queue: str) -> list[str]:
        suffix = f".{queue}.msg"
        return sorted(
            name
            for name in os.listdir(self.data_folder_in)
            if name.partition(".")[2] == suffix[1:] and not name.startswith(_HIDDEN)
        )

    def _purge(self, queue: str) -> int:
        self._listings.pop(queue, None)
        return int(super()._purge(queue))

    # -- exchange tables: read whole, updated under a lock by rename ----------------------

    @contextlib.contextmanager
    def _table_lock(self, exchange: str) -> Iterator[Path]:
        table = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(table.with_name(f"{_HIDDEN}{table.name}.lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield table
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _update_table(self, exchange: str, change: Callable[[list[Any]], list[Any]]) -> None:
        with self._table_lock(exchange) as table:
            try:
                current = [filesystem.exchange_queue_t(*row) for row in loads(table.read_bytes())]
            except FileNotFoundError:
                current = []
            updated = change(current)
            if updated != current:
                _write_atomically(table, dumps(updated).encode())

    def get_table(self, exchange: str) -> list[Any]:
        try:
            return [
                filesystem.exchange_queue_t(*row) for row in loads(self._exchange_file(exchange).read_bytes())
            ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open the table of exchange {exchange!r}") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda rows: rows if row in rows else [row, *rows])

    def _delete(
        self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any
    ) -> None:
        self._listings.pop(queue, None)
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda rows: [r for r in rows if r != row])


class Transport(filesystem.Transport):
    """Kombu's filesystem transport with :class:`Channel`'s atomic writes and claims."""

    Channel = Channel
    # One broker state per process, apart from Kombu's own transport's.
    global_state = virtual.BrokerState()
