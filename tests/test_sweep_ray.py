"""python -m interp.sweep SPEC --ray: stacks as Ray tasks (issue 12, item 2).

The sweep of tests/test_sweep.py (2 model widths x 2 learning rates x 2 seeds of small
transformers: two stacks of four) trained on Ray must equal the local backend's, also when
a Ray worker is killed mid-task. The tests that need Ray are skipped when it is not installed.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO, assert_same_run, run_in_process
from test_sweep import EPOCHS, SPEC, _write_spec

from interp.errors import UserError
from interp.files import LOCK_FILE
from interp.runs import RESUME_FILE, Run, checkpoint_path, read_sweep
from interp.sweep.ray_backend import _train_stack_task
from interp.sweep.runner import plan_sweep
from interp.sweep.spec import load_spec
from interp.train.loop import TrainOptions

MAIN = "interp.sweep.__main__"
NEEDS_RAY = "--ray needs the ray package (pip install 'interp[ray]')"


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    """The sweep file (and its base config) of tests/test_sweep.py."""
    return _write_spec(tmp_path_factory.mktemp("sweep-ray"))


@pytest.fixture(scope="module")
def reference(spec_path):
    """The spec, its sweep directory trained by the local backend, and its run names."""
    out = spec_path.parent / "local"
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return spec_path, out, [entry.name for entry in read_sweep(out).runs]


# A local Ray instance started as --ray with no address starts it, kept until stdin closes
HEAD = """
import sys
import ray
from interp.sweep.ray_backend import ray_session
with ray_session(None, cpus=2):
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def head():
    """A process starting a local Ray instance (2 CPUs) through ``ray_session``, as ``--ray``
    with no address does; it keeps it until its stdin closes."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled"}  # joined without
    process = subprocess.Popen([sys.executable, "-c", HEAD], cwd=REPO, env=env,  # a token
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield process
    process.stdin.close()  # it leaves ray_session: Ray is shut down
    process.wait(timeout=60)


@pytest.fixture(scope="module")
def cluster(head, reference):
    """The address of ``head``'s Ray instance, for ``--ray ADDRESS`` (it starts while the
    reference trains)."""
    address = head.stdout.readline().strip()
    assert address, "the Ray instance did not start"
    return address


def test_ray_gives_the_local_backends_runs(cluster, reference, tmp_path):
    spec_path, local, names = reference
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "ray"), "--quiet",
                            "--device", "cpu", "--ray", cluster)
    assert result.returncode == 0, result.stderr
    assert "8 runs; 8 trained in 2 stack(s)" in result.stdout and result.stderr == ""
    assert read_sweep(tmp_path / "ray").runs == read_sweep(local).runs
    for name in names:
        run = Run.load(tmp_path / "ray" / name)
        assert run.is_complete and run.record["runtime"]["stacked_runs"] == 4
        assert_same_run(run, Run.load(local / name), exact=False)


def test_a_killed_ray_worker_is_retried_and_resumes_its_runs(cluster, reference, tmp_path):
    spec_path, local, names = reference
    out = tmp_path / "killed"
    done = {}
    sweep = threading.Thread(target=lambda: done.update(result=run_in_process(
        MAIN, str(spec_path), "--out", str(out), "--quiet", "--device", "cpu", "--ray", cluster)))
    sweep.start()
    stacks = [names[:4], names[4:]]
    deadline = time.monotonic() + 240
    while True:  # until a stack has saved its runs' first resume states (epoch 10 of 40)
        begun = [stack for stack in stacks if all(
            checkpoint_path(out / n, 10).exists() and (out / n / RESUME_FILE).exists()
            for n in stack)]
        if begun:
            break
        assert sweep.is_alive(), done
        assert time.monotonic() < deadline, "no stack reached the kill point"
        time.sleep(0.002)
    stack = begun[0]
    worker = int((out / stack[0] / LOCK_FILE).read_text())  # the task's worker holds the run
    assert worker != os.getpid()
    os.kill(worker, signal.SIGKILL)
    cut = [n for n in stack if not checkpoint_path(out / n, EPOCHS).exists()]
    assert cut, "the stack finished before its worker was killed"
    starts = {n: checkpoint_path(out / n, 0).stat() for n in stack}
    created = {n: Run.load(out / n).record["created"] for n in stack}
    sweep.join(timeout=240)
    result = done["result"]
    assert result.returncode == 0, result.stderr
    assert "8 runs; 8 trained in 2 stack(s)" in result.stdout and "error" not in result.stderr
    for name in names:
        assert_same_run(Run.load(out / name), Run.load(local / name), exact=False)
    for name in stack:  # finished by another worker, resuming: none restarted from scratch
        assert int((out / name / LOCK_FILE).read_text()) != worker
        start = checkpoint_path(out / name, 0).stat()
        assert (start.st_ino, start.st_mtime_ns) == (starts[name].st_ino,
                                                     starts[name].st_mtime_ns)
        assert Run.load(out / name).record["created"] == created[name]


def test_unreachable_ray_address_is_one_line_in_seconds_and_writes_nothing(spec_path, tmp_path):
    pytest.importorskip("ray", reason=NEEDS_RAY)
    start = time.monotonic()
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"),
                            "--ray", "127.0.0.1:1")
    assert time.monotonic() - start < 10
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --ray: cannot reach a Ray cluster at 127.0.0.1:1 (")
    assert not (tmp_path / "out").exists()
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"),
                            "--ray", "no-port")
    assert result.returncode == 2 and "'no-port' is not a Ray address; give HOST:PORT" in (
        result.stderr)
    assert not (tmp_path / "out").exists()


def test_a_forced_spec_with_nothing_to_train_does_not_ask_ray(reference, tmp_path):
    """--force with a spec naming only finished runs rewrites sweep.json and trains nothing:
    Ray (here unreachable) is not asked."""
    spec_path, local, names = reference
    out = tmp_path / "copy"
    shutil.copytree(local, out)
    subset = _write_spec(tmp_path / "subset", SPEC.replace('"0:2"', '"0:1"'))
    shutil.copy(spec_path.parent / "base.json", subset.parent / "base.json")
    result = run_in_process(MAIN, str(subset), "--out", str(out), "--force", "--ray",
                            "127.0.0.1:1")
    assert result.returncode == 0, result.stderr
    assert "(4 runs, all finished: nothing to train)" in result.stdout
    assert len(read_sweep(out).runs) == 4 and "4 run(s) of the sweep" in result.stderr


@pytest.fixture
def not_ray():
    """The addresses of two local TCP servers that are not Ray: one answers as an HTTP/1
    server does (a dashboard's port), the other never answers."""
    servers = []
    for reply in (b"HTTP/1.1 400 Bad Request\r\n\r\n", None):
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve(server=server, reply=reply):
            held = []
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:  # closed: the test is over
                    break
                held.append(connection)
                if reply is not None:
                    connection.recv(1024)
                    connection.sendall(reply)
                    connection.close()
        threading.Thread(target=serve, daemon=True).start()
    yield [f"127.0.0.1:{server.getsockname()[1]}" for server in servers]
    for server in servers:
        server.close()


def test_an_address_that_is_not_ray_is_one_line_in_seconds_and_writes_nothing(
        spec_path, tmp_path, not_ray):
    """Before anything is written and before Ray is asked: ray.init on such an address
    waits minutes, printing Ray's own warnings."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    for address in not_ray:
        start = time.monotonic()
        result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"),
                                "--ray", address)
        assert time.monotonic() - start < 10
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: --ray: {address} answers, but not as a Ray "
                                        "cluster's head (no gRPC reply within 5 s); give ")
        assert not (tmp_path / "out").exists()
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"),
                            "--ray", "127.0.0.1:65536")
    assert result.returncode == 2 and "'127.0.0.1:65536' is not a Ray address" in result.stderr


def test_ray_not_installed_is_one_line_naming_the_extra(spec_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"), "--ray")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--ray needs the ray package, which is not installed: pip install 'interp[ray]'" in (
        result.stderr)
    assert not (tmp_path / "out").exists()


def test_ray_refuses_workers_and_dry_run_does_not_start_ray(spec_path, tmp_path):
    result = run_in_process(MAIN, str(spec_path), "--ray", "--workers", "2")
    assert result.returncode == 2 and result.stderr.startswith("error: --workers sets local ")
    result = run_in_process(MAIN, "--ray", str(spec_path))  # SPEC taken as the address
    assert result.returncode == 2 and "put it before --ray" in result.stderr
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "out"), "--dry-run",
                            "--ray", "127.0.0.1:1")  # unreachable, and never asked
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("8 runs -> ") and not (tmp_path / "out").exists()


def test_a_node_that_cannot_see_the_sweep_directory_says_so_in_one_line(spec_path, tmp_path):
    spec = load_spec(spec_path)
    plan = plan_sweep(tmp_path / "elsewhere", [run.name for run in spec.runs()], spec.configs())
    with pytest.raises(UserError, match="cannot see the sweep directory .*elsewhere: --ray needs "
                                        "every node to see it at the same path") as caught:
        _train_stack_task(plan, 0, TrainOptions(device="cpu"), epochs=None)  # as a task runs it
    assert "\n" not in str(caught.value) and not (tmp_path / "elsewhere").exists()
