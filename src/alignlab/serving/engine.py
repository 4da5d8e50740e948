"""The generation worker: one thread owns the model; requests queue up and are decoded in batches.

`HFGenerator` is not thread-safe, so exactly one thread (the worker) calls it. Request handlers
`submit` jobs to a bounded queue (full: 429; closing: 503). The worker waits for a job, then
collects more while fewer than `max_batch_rows` rows are queued and requests keep arriving less
than `batch_window_s` apart (at most `MAX_WINDOWS` windows in all): clients that arrive together,
or that come back as the previous batch answers them, share the next batch. It takes the queued
jobs in order up to `max_batch_rows` rows (a job's rows are its n), and decodes
them together with `HFGenerator.generate_each`: each job keeps its own sampling settings and
random stream, so batching never changes what a request gets. As the batch decodes, each job's
`JobSink` hears its tokens (streaming) and its completions as soon as its own rows end; a job that
is cancelled (client gone, timeout) or past its deadline stops generating at the next step.

This is batching per collection window, not continuous batching: a job that arrives while a batch
decodes waits for that batch to end.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from alignlab.generation.base import Completion, SamplingParams
from alignlab.generation.collect import TokenEvent
from alignlab.generation.hf import HFGenerator
from alignlab.serving.errors import (
    APIError,
    generation_failed,
    queue_full,
    shutting_down,
    timed_out,
    worker_stopped,
)

log = logging.getLogger("alignlab.serving")
MAX_WINDOWS = 20  # the longest a batch waits for more requests, in collection windows


class JobSink(Protocol):
    """Where a job's results go; called on the worker thread."""

    def token(self, sample: int, event: TokenEvent) -> None: ...

    def done(self, completions: list[Completion]) -> None: ...

    def failed(self, error: APIError) -> None: ...


@dataclass
class Job:
    """One request: its prompt's token ids, sampling settings, where results go, and its time limit."""

    prompt_ids: list[int]
    params: SamplingParams
    sink: JobSink
    timeout_s: float  # from submission; then the request is abandoned
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: bool = False

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def cancel(self) -> None:
        self.cancelled.set()

    def abandoned(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


class _BatchListener:
    """`generate_each`'s listener for one batch of jobs."""

    def __init__(self, jobs: list[Job], closing: threading.Event) -> None:
        self.jobs, self.closing = jobs, closing

    def token(self, request: int, sample: int, event: TokenEvent) -> None:
        self.jobs[request].sink.token(sample, event)

    def done(self, request: int, completions: list[Completion]) -> None:
        job = self.jobs[request]
        job.finished = True
        job.sink.done(completions)

    def cancelled(self, request: int) -> bool:
        return self.closing.is_set() or self.jobs[request].abandoned()


@dataclass
class EngineStats:
    batches: int = 0
    requests: int = 0  # answered or failed by the worker
    rows: int = 0  # rows decoded, summed over batches
    largest_batch: int = 0  # rows


class Engine:
    """The queue and the worker thread around one `HFGenerator`."""

    def __init__(
        self,
        generator: HFGenerator,
        *,
        max_queue: int = 256,
        batch_window_s: float = 0.005,
        max_batch_rows: int = 64,
    ) -> None:
        self.generator = generator
        self.max_queue, self.batch_window_s, self.max_batch_rows = max_queue, batch_window_s, max_batch_rows
        self._pending: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = EngineStats()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def healthy(self) -> bool:
        return not self._closing.is_set() and (self._thread is None or self._thread.is_alive())

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(target=self._run, name="alignlab-generation", daemon=True)
                self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job`; raises the APIError to answer when it cannot be queued."""
        self.start()
        with self._cond:
            if self._closing.is_set():
                raise shutting_down()
            if not self.healthy:
                raise worker_stopped()
            if len(self._pending) >= self.max_queue:
                raise queue_full(self.max_queue)
            self._pending.append(job)
            self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, answer queued ones 503, stop the running batch and the worker."""
        with self._cond:
            self._closing.set()
            waiting = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in waiting:
            job.sink.failed(shutting_down())
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            if jobs:
                self._generate(jobs)

    def _take(self) -> list[Job] | None:
        """The next batch of jobs (None once closing), after the collection window."""
        with self._cond:
            while not self._pending and not self._closing.is_set():
                self._cond.wait()
            if self._closing.is_set():
                return None
            # Collect while requests keep coming less than a window apart (at most MAX_WINDOWS windows):
            # many clients' requests are parsed one after another, so they arrive as a trickle.
            start = time.monotonic()
            seen = len(self._pending)
            gap_ends = start + self.batch_window_s
            while self._rows_pending() < self.max_batch_rows and not self._closing.is_set():
                now = time.monotonic()
                if len(self._pending) != seen:
                    seen, gap_ends = len(self._pending), now + self.batch_window_s
                left = min(gap_ends, start + MAX_WINDOWS * self.batch_window_s) - now
                if left <= 0:
                    break
                self._cond.wait(left)
            jobs: list[Job] = []
            rows = 0
            while self._pending and (not jobs or rows + self._pending[0].params.n <= self.max_batch_rows):
                job = self._pending.popleft()
                if job.abandoned():
                    job.sink.failed(self._unfinished(job))
                    continue
                jobs.append(job)
                rows += job.params.n
            return jobs

    def _rows_pending(self) -> int:
        return sum(j.params.n for j in self._pending)

    def _generate(self, jobs: list[Job]) -> None:
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        rows = sum(j.params.n for j in jobs)
        self.stats.rows += rows
        self.stats.largest_batch = max(self.stats.largest_batch, rows)
        try:
            self.generator.generate_each([j.prompt_ids for j in jobs], [j.params for j in jobs],
                                         listener=_BatchListener(jobs, self._closing))  # fmt: skip
        except Exception as err:  # one failed batch must not stop the server
            log.exception("generation failed for a batch of %d requests", len(jobs))
            for job in jobs:
                if not job.finished:
                    job.sink.failed(generation_failed(err))
            return
        for job in jobs:
            if not job.finished:
                job.sink.failed(self._unfinished(job))

    def _unfinished(self, job: Job) -> APIError:
        """Why a job stopped before its end (its handler may have answered already: then no one reads it)."""
        if self._closing.is_set():
            return shutting_down()
        if job.cancelled.is_set():
            return APIError(499, "the client closed the request", code="cancelled")
        return timed_out(job.timeout_s)
