"""Where episodes run: in this process, in local worker processes, or as Ray tasks spread over a cluster.

Collection and evaluation are maps of one job function over a list of episodes (task, number), each job a pure
function of its config and its seeds. `ordered_map` runs that map on the backend asked for and yields the results in
the jobs' order whatever finished first, so the dataset written (or the table reported) is the same for one process,
N local workers or a Ray cluster.

Ray (an optional extra: `pip install wam[ray]`): each episode is a Ray task of one CPU. A worker keeps what the job
function cached (the simulator, the policy) between the tasks it runs, as a local worker process does. A task whose
worker process or node dies is rerun by Ray (`max_retries`), so a lost worker loses no episode; an exception raised by
the job itself is an error in the episode and is not retried. Results travel back through Ray's object store, so what
a worker wrote on its own disk must come back in the result: `pack` runs on the worker, `unpack` on the caller.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from wam.errors import WamError

Job = TypeVar("Job")
Result = TypeVar("Result")

RAY_RETRIES = 3  # reruns of a task whose worker process or node died
_STATE: dict[str, Any] = {}  # in a Ray worker: the fingerprint of the config its job functions were set up with


class WorkersError(WamError):
    """The episodes cannot be run where asked: Ray missing, or a cluster that cannot be reached."""


@dataclass(frozen=True)
class Backend:
    """How many local worker processes, or which Ray cluster (`auto`: the one this machine belongs to; `local`: start
    one on this machine; or a cluster address such as `ray://head:10001` or `head:6379`)."""

    workers: int = 1
    ray: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    def describe(self) -> str:
        if self.ray is not None:
            return f"ray ({self.ray})"
        return "this process" if self.workers == 1 else f"{self.workers} local worker processes"


def ordered_map(
    init: Callable[[Any], None],
    run: Callable[[Job], Result],
    config: Any,
    jobs: Sequence[Job],
    backend: Backend,
    close: Callable[[], None] | None = None,
    pack: Callable[[Result], Any] | None = None,
    unpack: Callable[[Any], Result] | None = None,
) -> Iterator[Result]:
    """`run(job)` for every job, after `init(config)` in each worker, yielded in the order of `jobs`."""
    if not jobs:
        return
    if backend.ray is not None:
        yield from _ray_map(init, run, config, jobs, backend.ray, close, pack, unpack)
        return
    if backend.workers == 1:
        init(config)
        try:
            for job in jobs:
                yield run(job)
        finally:
            if close is not None:
                close()
        return
    context = mp.get_context("spawn")  # EGL contexts and MuJoCo state must not be forked
    with context.Pool(backend.workers, initializer=init, initargs=(config,)) as pool:
        yield from pool.imap(run, jobs, chunksize=1)


def connect_ray(address: str) -> Any:
    """The `ray` module, connected: to a cluster already joined in this process, else to `address`."""
    try:
        import ray
    except ImportError:
        raise WorkersError("--ray needs Ray, an optional extra: pip install 'wam[ray]'") from None
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise WorkersError(f"cannot join the Ray cluster at {address!r} ({err}); start one with `ray start --head`, "
                               "or pass --ray local to start one on this machine") from None
    return ray


def _ray_map(init, run, config, jobs, address: str, close, pack, unpack) -> Iterator:
    ray = connect_ray(address)
    remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES, retry_exceptions=False)(_call)
    fingerprint = hashlib.blake2b(pickle.dumps(config), digest_size=12).hexdigest()
    shared = ray.put((init, run, close, pack, config, fingerprint))  # sent once, not with every episode
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))  # keeps every CPU busy, bounds memory
    pending: deque = deque()
    for job in jobs:
        pending.append(remote.remote(shared, job))
        if len(pending) >= in_flight:
            yield _unpacked(ray.get(pending.popleft()), unpack)
    while pending:
        yield _unpacked(ray.get(pending.popleft()), unpack)


def _unpacked(value: Any, unpack: Callable | None) -> Any:
    return unpack(value) if unpack is not None else value


def _call(shared: tuple, job: Any) -> Any:
    """One episode in a Ray worker: set up once per config (what the job function caches stays for the next task)."""
    init, run, close, pack, config, fingerprint = shared
    if _STATE.get("fingerprint") != fingerprint:
        if _STATE.get("close") is not None:
            _STATE["close"]()
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        init(config)
        _STATE.update(fingerprint=fingerprint, close=close)
    result = run(job)
    return pack(result) if pack is not None else result
