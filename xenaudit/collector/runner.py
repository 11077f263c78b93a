"""Deadlines and bounded parallelism for per-guest work.

Several paramiko calls block without a timeout of their own (waiting for the
reply to `exec`, `sendall` into a window the server never opens), and a
hostile or hung guest can sit in any of them. Instead of trusting each call,
every guest gets a `Guard` with an absolute deadline; one watchdog thread
closes the guard's sockets and transports when it passes, which makes every
blocked call return or raise at once. The worker then sees `guard.expired`
and reports `timeout`.

`run_bounded` runs the work in a thread pool and yields results as they
finish. Workers normally finish by themselves soon after their deadline; for
anything that still hangs (a DNS lookup, which cannot be interrupted) the
generator stops waiting `grace_s` after the run deadline and yields a
fallback result for each, so the caller always gets exactly one result per
item and the run always ends.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Closeable(Protocol):
    def close(self) -> Any: ...


class Guard:
    """A deadline for one guest plus the things to close when it passes."""

    def __init__(self, deadline: float, watchdog: Watchdog) -> None:
        self.deadline = deadline
        self.expired = False
        self._watchdog = watchdog
        self._lock = threading.Lock()
        self._closeables: list[_Closeable] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def passed(self) -> bool:
        """The deadline has passed, whether or not the watchdog has acted on it yet."""
        return self.expired or time.monotonic() >= self.deadline

    def add(self, thing: _Closeable) -> None:
        """Close `thing` when the deadline passes (at once if it already has)."""
        with self._lock:
            if not self.expired:
                self._closeables.append(thing)
                return
        _close_quietly(thing)

    def expire(self) -> None:
        with self._lock:
            if self.expired:
                return
            self.expired = True
            things, self._closeables = self._closeables, []
        for thing in things:
            _close_quietly(thing)

    def release(self) -> None:
        """The work is over: stop watching (closing is the worker's business now)."""
        with self._lock:
            self._closeables = []
        self._watchdog.forget(self)


class Watchdog:
    """One thread that expires guards at their deadlines."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._live: set[Guard] = set()
        self._counter = itertools.count()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def guard(self, deadline: float) -> Guard:
        guard = Guard(deadline, self)
        with self._cv:
            self._live.add(guard)
            heapq.heappush(self._heap, (deadline, next(self._counter), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="xenaudit-watchdog", daemon=True
                )
                self._thread.start()
            self._cv.notify()
        return guard

    def forget(self, guard: Guard) -> None:
        with self._cv:
            self._live.discard(guard)

    def expire_all(self) -> None:
        """Expire every live guard now (the run is being abandoned)."""
        with self._cv:
            guards = list(self._live)
        for guard in guards:
            guard.expire()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped:
                    while self._heap and self._heap[0][2] not in self._live:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cv.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._cv.wait(timeout=delay)
                if self._stopped:
                    return
                _, _, guard = heapq.heappop(self._heap)
                self._live.discard(guard)
            guard.expire()


def run_bounded(
    items: Sequence[T],
    work: Callable[[T], R],
    *,
    concurrency: int,
    deadline: float,
    grace_s: float,
    fallback: Callable[[T, BaseException | None], R],
    on_abandon: Callable[[], None] = lambda: None,
) -> Iterator[R]:
    """Yield `work(item)` for every item as it completes, never more than `concurrency` at once.

    `deadline` is absolute (time.monotonic()). Items still running `grace_s`
    after it get `fallback(item, None)`; items whose work raised get
    `fallback(item, exc)` (a bug: the work is expected to turn every failure
    into a result). When items are abandoned, or the caller stops iterating
    early, `on_abandon` is called so running work can be told to give up.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="xenaudit")
    pending: dict[Future[R], T] = {pool.submit(work, item): item for item in items}
    completed = False
    try:
        while pending:
            timeout = deadline + grace_s - time.monotonic()
            if timeout <= 0:
                break
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    result = fallback(item, exc)
                yield result
        if pending:
            on_abandon()
        for future, item in list(pending.items()):
            future.cancel()
            pending.pop(future)
            yield fallback(item, None)
        completed = True
    finally:
        if not completed:
            on_abandon()
        pool.shutdown(wait=False, cancel_futures=True)


def _close_quietly(thing: _Closeable) -> None:
    # Closing a half-dead socket or transport may raise; it is closed either way.
    with contextlib.suppress(Exception):
        thing.close()
