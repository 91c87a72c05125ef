"""``python -m interp.bench``: interp's training throughput, against the reference loop and
M stacked runs against the same M runs trained one at a time.

    python -m interp.bench --device cpu --threads 2 --epochs 100
    python -m interp.bench --device cuda --epochs 2000 --models 1 16 64
    python -m interp.bench --preset liu-toy --models 1 64 1024 --no-reference
    python -m interp.bench --no-test             # no per-epoch test evaluation, for all

Every measurement trains ``--preset`` (default ``nanda``) on one schedule: 5 untimed warm-up
epochs, then ``--epochs`` timed ones (its schedule.epochs is set to their sum), the test
set evaluated every epoch (as the reference does; ``--no-test``: only at the end) and a
checkpoint every 100 epochs, full batch unless the preset has minibatches. What is timed:

- ``interp``: one run through ``interp.train.train`` (for nanda, and whenever ``--models``
  is not given);
- ``reference_tl_loop`` (nanda only): the plain TransformerLens loop on the same work (same
  data, split and initialisation; ``--reference``, by default
  ../shared/bench/reference_tl_loop.py beside the repository), as a subprocess;
- for each ``--models M``: ``interp_stacked``, M runs (model.seed and schedule.seed + 0 ..
  M-1) trained together by ``interp.train.ensemble.train_ensemble``, and
  ``interp_sequential``, the same runs trained one after another by the same trainer (one
  run per call). Sequentially, only the first K = ``--sequential-sample`` runs (default
  min(M, 4)) are trained and the per-run time extrapolated to M: the line says
  ``"sampled": K``.

Each measurement runs in a fresh process, so its peak memory is its own. Prints one JSON
line per measurement (epochs/s or model-epochs/s, peak resident memory, peak GPU memory on
CUDA, run 0's final losses), then one with the ratios (each stack over one at a time, and
for nanda interp over the reference); with ``--repeat N`` all of it N times, back to back,
then the ratio of the best runs (for a shared, noisy machine).
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
from dataclasses import dataclass
from pathlib import Path

from interp.cli import ArgumentParser, add_backend_arguments, run_main
from interp.config import RunConfig
from interp.errors import UserError
from interp.presets import PRESETS, get_preset

WARMUP_EPOCHS = 5  # untimed, as in the reference
CHECKPOINT_EVERY = 100  # the reference copies the state dict every 100 epochs
SEQUENTIAL_SAMPLE = 4  # runs trained one at a time per --models M, by default
REFERENCE_PRESET = "nanda"  # the one experiment the reference loop trains
DEFAULT_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / \
    "reference_tl_loop.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.bench", __doc__)
    parser.add_argument("--preset", default=REFERENCE_PRESET, metavar="NAME",
                        help=f"the experiment to train: one of {', '.join(PRESETS)} (default "
                             f"{REFERENCE_PRESET}, the one the reference loop trains)")
    parser.add_argument("--epochs", type=int, default=100,
                        help="timed epochs per run (default 100)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for all (0: leave torch's default)")
    parser.add_argument("--no-test", action="store_true",
                        help="no per-epoch test evaluation (for all)")
    parser.add_argument("--models", type=int, nargs="+", default=[], metavar="M",
                        help="for each M, time M runs stacked in one process against the same "
                             "runs one at a time (model-epochs/s)")
    parser.add_argument("--sequential-sample", type=int, default=SEQUENTIAL_SAMPLE, metavar="K",
                        help="train at most K of the M runs one at a time and extrapolate the "
                             f"per-run time (default {SEQUENTIAL_SAMPLE})")
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument("--reference", type=Path,
                           help=f"the reference loop script, nanda only (default: "
                                f"{DEFAULT_REFERENCE} when present)")
    reference.add_argument("--no-reference", action="store_true",
                           help="time interp only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure everything this many times, back to back (on a shared "
                             "machine); the last line also gives the ratio of the best runs")
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    get_preset(args.preset)  # an unknown name: UserError listing the presets
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if any(m < 1 for m in args.models):
        raise UserError(f"--models must be at least 1, got {min(args.models)}")
    if args.sequential_sample < 1:
        raise UserError(f"--sequential-sample must be at least 1, got {args.sequential_sample}")
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0, got {args.threads}")
    if args.repeat < 1:
        raise UserError(f"--repeat must be at least 1, got {args.repeat}")
    if args.reference is not None and args.preset != REFERENCE_PRESET:
        raise UserError(f"--reference: the reference loop trains {REFERENCE_PRESET} only, not "
                        f"{args.preset}; drop --reference or use --preset {REFERENCE_PRESET}")
    args.models = list(dict.fromkeys(args.models))  # each M once
    return args


def reference_script(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The reference loop to run, or None and why not (not asked for, another preset, or
    not found at the default)."""
    if args.no_reference:
        return None, "--no-reference"
    if args.preset != REFERENCE_PRESET:
        return None, f"the reference loop trains {REFERENCE_PRESET} only, not {args.preset}"
    if args.reference is not None:
        if not args.reference.is_file():
            raise UserError(f"--reference {args.reference}: no such file")
        return args.reference, ""
    if DEFAULT_REFERENCE.is_file():
        return DEFAULT_REFERENCE, ""
    return None, f"no reference script (looked for {DEFAULT_REFERENCE}; see --reference)"


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


@dataclass(frozen=True)
class Measurement:
    """One timed training: ``kind`` "single" (one run through ``interp.train.train``),
    "stacked" (``models`` runs in one ``train_ensemble``) or "sequential" (the first
    ``sampled`` of those runs, one ``train_ensemble`` each, one after another)."""

    kind: str
    models: int = 1
    sampled: int = 1

    @property
    def impl(self) -> str:
        return "interp" if self.kind == "single" else f"interp_{self.kind}"

    @property
    def timed_runs(self) -> int:
        return {"single": 1, "stacked": self.models, "sequential": self.sampled}[self.kind]


def measurements(args: argparse.Namespace) -> list[Measurement]:
    """What interp times in one round, in order: the single run (for nanda, or without
    ``--models``), then for each M its stack and its runs one at a time, back to back."""
    out = []
    if args.preset == REFERENCE_PRESET or not args.models:
        out.append(Measurement("single"))
    for m in args.models:
        out += [Measurement("stacked", m),
                Measurement("sequential", m, min(m, args.sequential_sample))]
    return out


def bench_configs(args: argparse.Namespace, runs: int) -> list[RunConfig]:
    """The first ``runs`` runs the bench trains: the preset on the bench's schedule, run i
    with model.seed and schedule.seed raised by i."""
    epochs = WARMUP_EPOCHS + args.epochs
    config = get_preset(args.preset).with_overrides([
        f"schedule.epochs={epochs}", f"schedule.eval_every={epochs if args.no_test else 1}",
        f"schedule.checkpoint_every={CHECKPOINT_EVERY}", "schedule.checkpoint_log=0"])
    return [config.with_overrides([f"model.seed={config.model.seed + i}",
                                   f"schedule.seed={config.schedule.seed + i}"])
            for i in range(runs)]


class _EpochTimer:
    """``TrainOptions.on_epoch``: adds up the seconds from the end of the warm-up to the last
    epoch over each training it sees (a stack is one, a run alone one), and counts them."""

    def __init__(self, epochs: int, device: str):
        self.epochs, self.device = epochs, device
        self.seconds, self.started, self.trainings = 0.0, 0.0, 0

    def __call__(self, epoch: int) -> None:
        if epoch not in (WARMUP_EPOCHS, self.epochs):
            return
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        if epoch == WARMUP_EPOCHS:
            self.started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.started
            self.trainings += 1


def measure_interp(measurement: Measurement, args: argparse.Namespace, device: str) -> dict:
    """Time ``measurement`` in this process: its JSON record."""
    import torch

    from interp.runs import Run
    from interp.train.ensemble import train_ensemble
    from interp.train.loop import TrainOptions, train

    if args.threads:
        torch.set_num_threads(args.threads)
    configs = bench_configs(args, measurement.timed_runs)
    timer = _EpochTimer(configs[0].schedule.epochs, device)
    options = TrainOptions(device=device, quiet=True, compile=args.compile,
                           matmul_precision=args.matmul_precision, on_epoch=timer)
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        dirs = [Path(tmp) / str(i) for i in range(len(configs))]
        if measurement.kind == "single":
            paths = [train(configs[0], dirs[0], options)]
        elif measurement.kind == "stacked":
            paths = train_ensemble(configs, dirs, options)
        else:
            paths = [train_ensemble([config], [out], options)[0]
                     for config, out in zip(configs, dirs, strict=True)]
        first = Run.load(paths[0])
        last = first.metrics.iloc[-1]
        compiled = first.record.get("runtime", {}).get("compile")
    trainings = measurement.sampled if measurement.kind == "sequential" else 1
    if timer.trainings != trainings:
        raise RuntimeError(f"the trainer reported {timer.trainings} timed trainings through "
                           f"TrainOptions.on_epoch, not {trainings} (once per epoch of each "
                           "training, a stack being one): the timing would be wrong")
    record = {"impl": measurement.impl, "preset": args.preset, "device": device,
              "epochs": args.epochs, "per_epoch_test_eval": not args.no_test}
    if measurement.kind != "single":
        record["models"] = measurement.models
    if measurement.kind == "sequential":
        record.update(sampled=measurement.sampled,
                      extrapolated=measurement.sampled < measurement.models)
    rate = round(measurement.timed_runs * args.epochs / timer.seconds, 2)
    record["seconds"] = round(timer.seconds, 3)
    record["epochs_per_s" if measurement.kind == "single" else "model_epochs_per_s"] = rate
    record.update(
        compile=compiled, matmul_precision=args.matmul_precision,
        train_loss=float(last["train_loss"]), test_loss=float(last["test_loss"]),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20)
        if device.startswith("cuda") else None)
    return record


def _measure_in_child(measurement: Measurement, args: argparse.Namespace, device: str,
                      pipe) -> None:
    try:
        pipe.send(measure_interp(measurement, args, device))
    except Exception as err:  # reported by the parent as a one-line error
        pipe.send({"error": str(err) if isinstance(err, UserError)
                   else f"{type(err).__name__}: {err}"})


def measure_in_fresh_process(measurement: Measurement, args: argparse.Namespace,
                             device: str) -> dict:
    """``measure_interp`` in a new process, so peak memory and threads are its own."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_measure_in_child,
                              args=(measurement, args, device, send))
    process.start()
    send.close()
    try:
        record = receive.recv()
    except EOFError:
        record = {"error": f"the measuring process died (exit code {process.exitcode})"}
    process.join()
    if "error" in record:
        what = "" if measurement.kind == "single" else \
            f" ({measurement.kind}, --models {measurement.models})"
        raise UserError(f"interp benchmark of {args.preset}{what} failed: {record['error']}")
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device not in (None, "cpu", "cuda"):  # what the reference loop takes
        raise UserError(f"--device must be cpu or cuda, got {args.device!r}")
    script, why_not = reference_script(args)
    from interp.train.loop import resolve_device

    device = str(resolve_device(args.device))
    if script is None:
        print(json.dumps({"impl": "reference_tl_loop", "skipped": why_not}), flush=True)
    rounds = []
    for repeat in range(args.repeat):
        records: list[dict] = []
        rounds.append(records)
        steps = [lambda: run_reference(script, args, device)] if script else []
        steps += [lambda m=m: measure_in_fresh_process(m, args, device)
                  for m in measurements(args)]
        for measure in steps:
            records.append(measure())
            print(json.dumps({**records[-1], "repeat": repeat}), flush=True)
        if ratio := ratios(records):
            print(json.dumps({"impl": "ratio", "preset": args.preset, "repeat": repeat,
                              **ratio}), flush=True)
    if args.repeat > 1 and ratios(rounds[0]):
        best = [max(column, key=_throughput) for column in zip(*rounds, strict=True)]
        print(json.dumps({"impl": "ratio", "preset": args.preset, "repeat": "best",
                          **ratios(best)}), flush=True)
    return 0


def _throughput(record: dict) -> float:
    return record.get("epochs_per_s") or record["model_epochs_per_s"]


def ratios(records: list[dict]) -> dict[str, float]:
    """The throughput ratios of one round of records: ``stacked_M_over_sequential`` for each
    M, and with a reference record ``interp_over_reference`` and ``stacked_M_over_reference``
    (model-epochs/s over the reference's epochs/s)."""
    by_impl = {(r["impl"], r.get("models")): r for r in records}
    stacks = [r for r in records if r["impl"] == "interp_stacked"]
    out = {f"stacked_{s['models']}_over_sequential": round(
        s["model_epochs_per_s"] / by_impl["interp_sequential", s["models"]]["model_epochs_per_s"],
        2) for s in stacks}
    reference = by_impl.get(("reference_tl_loop", None))
    if reference is not None:
        base = reference["epochs_per_s"]
        if ("interp", None) in by_impl:
            out["interp_over_reference"] = round(by_impl["interp", None]["epochs_per_s"] / base,
                                                 2)
        out.update({f"stacked_{s['models']}_over_reference": round(
            s["model_epochs_per_s"] / base, 2) for s in stacks})
    return out


if __name__ == "__main__":
    sys.exit(run_main(main))
