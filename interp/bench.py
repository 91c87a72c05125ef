"""``python -m interp.bench``: interp's training throughput against the reference loop.

    python -m interp.bench --device cpu --threads 2 --epochs 100
    python -m interp.bench --device cuda --epochs 2000 --models 8 64
    python -m interp.bench --no-test             # no per-epoch test evaluation, for both

Runs the same work through both: the ``nanda`` experiment (a + b mod 113, the same split
and initialisation), full batch, evaluating the test set every epoch (as the reference
does), after 5 untimed warm-up epochs. The reference is the plain TransformerLens loop
(``--reference``, by default ../shared/bench/reference_tl_loop.py beside the repository),
run as a subprocess; interp runs its real trainer (``interp.train``: metrics rows,
checkpoints every 100 epochs, resume state), and for ``--models M`` the ensemble trainer on
M seeds. Each measurement runs in a fresh process, so its peak memory is its own. Prints
one JSON line per measurement, then the ratios; with ``--repeat N`` all of it N times, back
to back, then the ratio of the best runs (for a shared, noisy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interp.cli import ArgumentParser, add_backend_arguments, run_main
from interp.errors import UserError

WARMUP_EPOCHS = 5  # untimed, as in the reference
CHECKPOINT_EVERY = 100  # the reference copies the state dict every 100 epochs
DEFAULT_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / \
    "reference_tl_loop.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.bench", __doc__)
    parser.add_argument("--epochs", type=int, default=100, help="timed epochs (default 100)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for both (0: leave torch's default)")
    parser.add_argument("--no-test", action="store_true",
                        help="no per-epoch test evaluation (for both)")
    parser.add_argument("--models", type=int, nargs="*", default=[], metavar="M",
                        help="also time ensembles of M runs in one process (model-epochs/s)")
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument("--reference", type=Path,
                           help=f"the reference loop script (default: {DEFAULT_REFERENCE} "
                                "when present)")
    reference.add_argument("--no-reference", action="store_true",
                           help="time interp only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure everything this many times, back to back (on a shared "
                             "machine); the last line also gives the ratio of the best runs")
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if any(m < 1 for m in args.models):
        raise UserError(f"--models must be at least 1, got {min(args.models)}")
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0, got {args.threads}")
    if args.repeat < 1:
        raise UserError(f"--repeat must be at least 1, got {args.repeat}")
    return args


def reference_script(args: argparse.Namespace) -> Path | None:
    """The reference loop to run, or None (not asked for, or not found at the default)."""
    if args.no_reference:
        return None
    if args.reference is not None:
        if not args.reference.is_file():
            raise UserError(f"--reference {args.reference}: no such file")
        return args.reference
    return DEFAULT_REFERENCE if DEFAULT_REFERENCE.is_file() else None


def run_reference(script: Path, args: argparse.Namespace, device: str) -> dict:
    """Run the reference loop in a subprocess; its JSON line plus its peak memory."""
    command = [sys.executable, str(script), "--epochs", str(args.epochs), "--device", device,
               "--threads", str(args.threads)]
    if args.no_test:
        command.append("--no-test")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   env=env)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # the child's own resource usage
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        errors.seek(0)
        error_lines = errors.read().strip().splitlines()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise UserError(f"the reference loop {script} failed: "
                        f"{(error_lines or ['no output'])[-1]}")
    record = json.loads(lines[-1])
    record["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    return record


def measure_interp(models: int, args: argparse.Namespace, device: str) -> dict:
    """Time interp's trainer (``models`` 0) or ensemble trainer (M runs) in this process."""
    import torch

    from interp.presets import nanda
    from interp.runs import Run
    from interp.train.backend import should_compile
    from interp.train.ensemble import train_ensemble
    from interp.train.loop import TrainOptions, train

    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = WARMUP_EPOCHS + args.epochs
    config = nanda().with_overrides([
        f"schedule.epochs={epochs}", f"schedule.eval_every={epochs if args.no_test else 1}",
        f"schedule.checkpoint_every={CHECKPOINT_EVERY}"])
    marks: dict[int, float] = {}

    def on_epoch(epoch: int) -> None:
        if epoch in (WARMUP_EPOCHS, epochs):
            if device == "cuda":
                torch.cuda.synchronize()
            marks[epoch] = time.perf_counter()

    options = TrainOptions(device=device, quiet=True, compile=args.compile,
                           matmul_precision=args.matmul_precision, on_epoch=on_epoch)
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        if models:
            configs = [config.with_overrides([f"model.seed={config.model.seed + i}"])
                       for i in range(models)]
            paths = train_ensemble(configs, [Path(tmp) / str(i) for i in range(models)],
                                   options)
        else:
            paths = [train(config, Path(tmp) / "run", options)]
        last = Run.load(paths[0]).metrics.iloc[-1]
    seconds = marks[epochs] - marks[WARMUP_EPOCHS]
    record = {
        "impl": "interp_ensemble" if models else "interp", "device": device,
        "epochs": args.epochs, "per_epoch_test_eval": not args.no_test,
        "seconds": round(seconds, 3),
    }
    if models:
        record.update(models=models, model_epochs_per_s=round(models * args.epochs / seconds, 2))
    else:
        record["epochs_per_s"] = round(args.epochs / seconds, 2)
    record.update(
        compile=should_compile(args.compile, torch.device(device), fast_path=True),
        matmul_precision=args.matmul_precision,
        train_loss=float(last["train_loss"]), test_loss=float(last["test_loss"]),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20) if device == "cuda"
        else None)
    return record


def _measure_in_child(models: int, args: argparse.Namespace, device: str, pipe) -> None:
    try:
        pipe.send(measure_interp(models, args, device))
    except Exception as err:  # reported by the parent as a one-line error
        pipe.send({"error": f"{type(err).__name__}: {err}"})


def measure_in_fresh_process(models: int, args: argparse.Namespace, device: str) -> dict:
    """``measure_interp`` in a new process, so peak memory and threads are its own."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_measure_in_child, args=(models, args, device, send))
    process.start()
    send.close()
    try:
        record = receive.recv()
    except EOFError:
        record = {"error": f"the measuring process died (exit code {process.exitcode})"}
    process.join()
    if "error" in record:
        raise UserError(f"interp {'ensemble ' if models else ''}benchmark failed: "
                        f"{record['error']}")
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from interp.train.loop import resolve_device

    if args.device not in (None, "cpu", "cuda"):  # what the reference loop takes
        raise UserError(f"--device must be cpu or cuda, got {args.device!r}")
    device = str(resolve_device(args.device))
    script = reference_script(args)
    if script is None:
        print(json.dumps({"impl": "reference_tl_loop", "skipped": "no reference script "
                          f"(looked for {DEFAULT_REFERENCE}; see --reference)"}), flush=True)
    rounds = []
    for repeat in range(args.repeat):
        records: list[dict] = []
        rounds.append(records)
        measurements = [lambda: run_reference(script, args, device)] if script else []
        measurements += [lambda m=m: measure_in_fresh_process(m, args, device)
                         for m in (0, *args.models)]
        for measure in measurements:
            records.append(measure())
            print(json.dumps({**records[-1], "repeat": repeat}), flush=True)
        if script:
            print(json.dumps({"impl": "ratio", "repeat": repeat, **ratios(records)}), flush=True)
    if script and args.repeat > 1:
        best = [max(column, key=_throughput) for column in zip(*rounds, strict=True)]
        print(json.dumps({"impl": "ratio", "repeat": "best", **ratios(best)}), flush=True)
    return 0


def _throughput(record: dict) -> float:
    return record.get("epochs_per_s") or record["model_epochs_per_s"]


def ratios(records: list[dict]) -> dict[str, float]:
    """interp's throughput over the reference's, from one round of records (reference
    first, then interp, then the ensembles)."""
    reference, single, *ensembles = records
    base = reference["epochs_per_s"]
    out = {"interp_over_reference": round(single["epochs_per_s"] / base, 2)}
    out.update({f"ensemble_{e['models']}_over_reference": round(e["model_epochs_per_s"] / base,
                                                                2) for e in ensembles})
    return out


if __name__ == "__main__":
    sys.exit(run_main(main))
