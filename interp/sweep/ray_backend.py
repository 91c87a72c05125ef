"""Training a sweep's stacks as Ray tasks: ``python -m interp.sweep SPEC --ray [ADDRESS]``.

``ray_session`` starts a local Ray instance (no address) or joins a running cluster, before
the sweep directory is written: an unreachable address is a one-line error within seconds.
``train_on_ray`` then submits each stack of the plan as one Ray task that trains it with the
local backend's ``train_stack`` call, feeding the same progress bar through a small actor
(the latest epoch of each stack, so it holds one number per stack).

Every task writes its runs' directories in place, at their absolute paths: all nodes must
see the sweep directory at the same path (a shared filesystem: NFS, a cluster's home or
scratch disk). Run directories are never copied between nodes; a task on a node that cannot
see the sweep directory fails with a one-line error naming the node.

A task whose worker dies (killed, out of memory, node lost) is retried by Ray up to
``MAX_RETRIES`` times. Each attempt first re-plans its runs as their directories are now
(``plan_sweep``): finished runs are skipped, runs an earlier attempt began resume from their
resume states, the others are made; so a retry trains nothing twice from scratch and ends
where an uninterrupted task would. Run locks are taken by the task (``train_stack``); the
sweep process holds only the sweep directory's lock.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from interp.errors import UserError

if TYPE_CHECKING:
    from interp.sweep.runner import SweepPlan
    from interp.train.loop import TrainOptions

MAX_RETRIES = 3  # attempts after a task's worker dies; each resumes what the last one began
CONNECT_TIMEOUT_S = 5.0  # for the address to accept a connection before Ray is asked to join
INSTALL_HINT = "pip install 'interp[ray]'"
SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an empty HTTP/2 SETTINGS frame (type 4)
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SETTINGS_FRAME  # a gRPC client's opening


def local_cpus() -> int:
    """CPUs of the local Ray instance ``--ray`` starts: the cores this process may use (one
    stack a core, each on one torch thread)."""
    return len(os.sched_getaffinity(0))


@contextmanager
def ray_session(address: str | None, cpus: int | None = None) -> Iterator[None]:
    """Ray connected for the block: a new local instance with ``cpus`` CPUs (``address``
    None) or the cluster at ``address`` ("HOST:PORT" of its head, or "auto"); shut
    down (a local instance stopped, a cluster left) after it. UserError, in seconds, if Ray
    is not installed or the address cannot be reached."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs the ray package, which is not installed: {INSTALL_HINT} "
                        "(or make install), or drop --ray") from None
    if address is not None:
        _check_reachable(address)
    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address is None:
            ray.init(address="local", num_cpus=cpus or local_cpus(), **settings)
        else:
            ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = "start a local Ray instance" if address is None else f"join Ray at {address}"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        hint = ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token and its "
                "token (RAY_AUTH_TOKEN)" if address not in (None, "auto")
                and os.environ.get("RAY_AUTH_MODE") != "token" else "")
        raise UserError(f"--ray: could not {where}: {first}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """UserError unless ``address``'s host accepts a TCP connection on its port and answers
    an HTTP/2 preface as a gRPC server (Ray's GCS) does, each within ``CONNECT_TIMEOUT_S``
    ("auto" is left to Ray: it reads the address of the running cluster). Ray itself would
    wait minutes for an address that never answers, or that another server (a dashboard, a
    Redis) holds."""
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 2**16 or "://" in address:
        raise UserError(f"--ray {address!r} is not a Ray address; give HOST:PORT (the head "
                        "node's, as `ray start --head` prints it) or auto")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S)
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise UserError(f"--ray: cannot reach a Ray cluster at {address} ({reason}); start "
                        "one there (ray start --head) or give the head node's HOST:PORT") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        connection.close()  # the GCS speaks TLS first: Ray's own handshake checks it
        return
    with connection:
        try:
            connection.sendall(HTTP2_PREFACE)
            reply = b""
            while len(reply) < len(SETTINGS_FRAME) and (part := connection.recv(64)):
                reply += part
        except OSError:
            reply = b""
    if reply[3:4] != SETTINGS_FRAME[3:4]:  # a gRPC server's first frame is its SETTINGS
        raise UserError(f"--ray: {address} answers, but not as a Ray cluster's head (no gRPC "
                        f"reply within {CONNECT_TIMEOUT_S:g} s); give the address `ray start "
                        "--head` prints (its GCS port), not the dashboard's or another server's")


def train_on_ray(plan: SweepPlan, options: TrainOptions, quiet: bool = False) -> None:
    """Train the plan's stacks as Ray tasks on the connected cluster (``ray_session``), one
    task a stack, with the local backend's progress bar. A task that fails raises here (a
    UserError as itself, one line); the tasks not yet finished are then cancelled."""
    import ray

    from interp.sweep.runner import REPORT_EVERY_S, Progress

    plan = dataclasses.replace(plan, out=plan.out.resolve())  # workers have other cwds
    wants_gpu = options.device is None or options.device.startswith("cuda")
    gpus = ray.cluster_resources().get("GPU", 0) if wants_gpu else 0
    if gpus:  # a GPU a task: Ray shows it the one it gave it (CUDA_VISIBLE_DEVICES)
        options = dataclasses.replace(options, device="cuda")
    task = ray.remote(_train_stack_task).options(
        num_cpus=1, num_gpus=1 if gpus else 0, max_retries=MAX_RETRIES, name="interp.sweep")
    epochs = ray.remote(_Epochs).options(num_cpus=0).remote()
    progress = Progress(plan, quiet)
    shared = ray.put(plan)
    futures = {task.remote(shared, index, options, epochs): index
               for index in range(len(plan.units))}
    pending = list(futures)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=REPORT_EVERY_S,
                                     fetch_local=False)
            for index, epoch in ray.get(epochs.take.remote()).items():
                progress.report(index, epoch)
            for future in done:
                _result(future)
                progress.finish(futures[future])
    except BaseException:
        for future in pending:
            ray.cancel(future, force=True)
        raise
    finally:
        progress.close()


def _result(future: Any) -> None:
    """Wait for a finished task: a UserError it raised is raised as itself; a worker that
    died more often than Ray retries it is a one-line UserError."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    try:
        ray.get(future)
    except RayTaskError as err:
        if isinstance(err.cause, UserError):
            raise err.cause from None
        raise
    except RayError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"a Ray task training a stack failed {MAX_RETRIES + 1} times ({first}); "
                        "rerun the command: finished runs are kept and the others resume") from None


def _train_stack_task(plan: SweepPlan, index: int, options: TrainOptions, epochs: Any) -> None:
    """Train stack ``index`` of ``plan`` in a Ray worker: its runs as their directories are
    now (a retried task resumes what the last attempt began), reporting epochs to
    ``epochs`` (an ``_Epochs`` actor)."""
    from interp.runs import is_sweep_dir
    from interp.sweep.runner import Throttled, plan_sweep, train_unit

    if not is_sweep_dir(plan.out):
        raise UserError(f"Ray node {socket.gethostname()} cannot see the sweep directory "
                        f"{plan.out}: --ray needs every node to see it at the same path (a "
                        "shared filesystem); mount it there, or run without --ray")
    unit = plan.units[index]
    now = plan_sweep(plan.out, [plan.names[i] for i in unit.runs], plan.unit_configs(unit),
                     force=options.force)
    report = Throttled(lambda epoch: epochs.report.remote(index, epoch))
    for part in now.units:
        train_unit(now.unit_configs(part), now.paths(part), part.resume,
                    dataclasses.replace(options, on_epoch=report))


class _Epochs:
    """A Ray actor holding the latest epoch each stack reported, until the sweep takes them."""

    def __init__(self) -> None:
        self.latest: dict[int, int] = {}

    def report(self, index: int, epoch: int) -> None:
        self.latest[index] = max(epoch, self.latest.get(index, epoch))

    def take(self) -> dict[int, int]:
        latest, self.latest = self.latest, {}
        return latest
