"""Shared command-line plumbing: every failure a user can act on becomes one line
``error: ...`` on stderr with exit status 2, never a traceback or a usage block."""

import argparse
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

from interp.errors import UserError
from interp.files import check_output_dir as check_output_dir  # the commands' output check

EXIT_USER_ERROR = 2

# what to do about a file-system error, by errno (the OS says what went wrong)
_ADVICE = {
    errno.ENOSPC: "free disk space, then rerun the command; a training run continues with "
                  "--resume",
    errno.EDQUOT: "free space within your quota, then rerun the command; a training run "
                  "continues with --resume",
    errno.EROFS: "choose a writable --out",
    errno.EACCES: "check its permissions, or choose another --out",
    errno.EPERM: "check its permissions, or choose another --out",
    errno.EISDIR: "a file was expected here: give the path of a file",
    errno.ENAMETOOLONG: "use a shorter name: at most 255 bytes per name",
    errno.EEXIST: "move it away, or choose another --out",
    errno.ENOENT: "check the path",
    errno.ENOTEMPTY: "move its contents away, or choose another --out",
    errno.EMFILE: "raise the open-file limit (ulimit -n), then rerun",
    errno.EIO: "the disk or file system failed: check it, then rerun",
}


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose mistakes (unknown option, missing or invalid
    value, bad choice) raise ``UserError``, so ``run_main`` prints one line, not the usage."""

    @classmethod
    def from_doc(cls, prog: str, doc: str) -> "ArgumentParser":
        """A parser whose --help shows ``doc`` whole: its first paragraph as the description,
        the rest as written after the options."""
        first, _, rest = doc.strip().partition("\n\n")
        return cls(prog=prog, description=first, epilog=rest or None,
                   formatter_class=argparse.RawDescriptionHelpFormatter)

    def format_help(self) -> str:
        return super().format_help().replace("``", "")  # docstrings' literal markup

    def error(self, message: str):
        raise UserError(f"{message} (see --help)")


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Call ``main(argv)``; a ``UserError`` or a file-system error (``OSError``: disk full,
    read-only, permission denied, ...) is printed as one line ``error: ...``, returning 2."""
    try:
        return main(argv) or 0
    except UserError as err:
        message = str(err)
    except OSError as err:
        message = os_error_message(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print("error: " + " ".join(message.splitlines()), file=sys.stderr)
    return EXIT_USER_ERROR


def os_error_message(err: OSError) -> str:
    """One line for a file-system error: ``PATH: what the OS said (what to do)``.

    ``PATH`` is ``err.filename`` (``A -> B`` with ``err.filename2``), left out when the OS
    did not name one (a write that hit a full disk)."""
    where = " -> ".join(str(name) for name in (err.filename, err.filename2) if name is not None)
    what = err.strerror or str(err) or type(err).__name__
    advice = _ADVICE.get(err.errno)
    if err.errno in (errno.ENOTDIR, errno.EEXIST) and err.filename is not None:
        # making a directory where, or below where, a file is (mkdir says one or the other)
        blocker = _file_in_the_way(Path(str(err.filename)))
        if blocker is not None:
            what = f"{blocker} is a file, not a directory"
            advice = "move that file away, or choose another path"
            where = "" if where == str(blocker) else where
    message = f"{where}: {what}" if where else what
    return f"{message} ({advice})" if advice else message


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of ``path`` and its ancestors that exists and is not a directory."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if candidate.is_dir() else candidate
    return None


def check_positive(option: str, value: int | float | None) -> None:
    """UserError unless ``value`` (of command-line ``option``; None: not given) is > 0."""
    if value is not None and not value > 0:
        kind = "a positive integer" if isinstance(value, int) else "positive"
        raise UserError(f"{option} must be {kind}, got {value}")


KERNELS = ("correct_class", "trace")  # the NTK kinds of the lazy_rich analysis


def add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    """--every, --device, --probes, --kernels and --checkpoint-batch: how ``interp.analyze``
    computes (checked by ``analysis_options``)."""
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="analyse every K-th checkpoint (the last always)")
    parser.add_argument("--device", default="cpu", help="torch device for the models")
    parser.add_argument("--probes", type=int, default=256,
                        help="probe inputs (from the test split) for the NTK, alignment and "
                             "CKA of the lazy_rich analysis (default 256)")
    parser.add_argument("--kernels", nargs="+", choices=KERNELS, default=["correct_class"],
                        help="NTK kinds: the correct-class logit kernel (default) and/or the "
                             "trace over outputs (exact; n_outputs times the cost)")
    parser.add_argument("--checkpoint-batch", type=int, metavar="N",
                        help="checkpoints evaluated together with stacked weights (one-layer "
                             "transformers; default: as many as fit in half the free GPU "
                             "memory on CUDA, 1 on CPU)")
    llc = parser.add_argument_group(
        "llc (--only llc): the SGLD sampler; defaults per model kind, calibrated (see "
        "interp/analysis/llc.py)")
    for flag, kind, what in LLC_FLAGS:
        llc.add_argument(flag, type=kind, metavar=kind.__name__.upper(), help=what)
    sharpness = parser.add_argument_group("sharpness (--only sharpness): Lanczos on "
                                          "Hessian-vector products")
    for flag, kind, what in SHARPNESS_FLAGS:
        sharpness.add_argument(flag, type=kind, help=what,
                               metavar="N|all" if kind is _examples else kind.__name__.upper())


def _examples(value: str) -> int | str:
    """--sharpness-examples: a count, or "all"."""
    if value == "all" or value.isdigit():
        return value if value == "all" else int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is neither a number of training examples "
                                     "nor 'all'")


# (flag, type, help): each sets the field of its name in SGLDOverrides / SharpnessOverrides
LLC_FLAGS = (
    ("--llc-step-size", float, "SGLD step size epsilon"),
    ("--llc-nbeta", float, "inverse temperature n*beta (default n / log n)"),
    ("--llc-localization", float, "strength gamma of the pull back to the checkpoint"),
    ("--llc-chains", int, "chains per checkpoint (sampled together)"),
    ("--llc-draws", int, "draws per chain kept after the burn-in"),
    ("--llc-burn-in", int, "steps discarded at the start of each chain"),
    ("--llc-batch-size", int, "minibatch rows per SGLD step"),
    ("--llc-seed", int, "seed of the chains' noise and minibatches"))
SHARPNESS_FLAGS = (
    ("--sharpness-tolerance", float, "stop when the Ritz residual is below this fraction of "
                                     "the eigenvalue (default 1e-3)"),
    ("--sharpness-max-matvecs", int, "most Hessian-vector products per checkpoint"),
    ("--sharpness-examples", _examples, "training examples the loss averages (a seeded "
                                        "subset), or 'all' (the default)"),
    ("--sharpness-seed", int, "seed of the Lanczos start vector and the subset"))


def _overrides(args: argparse.Namespace, flags, kind):
    """The ``kind`` (an overrides dataclass) holding the ``flags`` given on the command line
    (``--llc-step-size`` sets ``step_size``)."""
    return kind(**{flag[2:].split("-", 1)[1].replace("-", "_"): getattr(
        args, flag[2:].replace("-", "_")) for flag, _, _ in flags
        if getattr(args, flag[2:].replace("-", "_")) is not None})


def analysis_options(args: argparse.Namespace):
    """The ``interp.analyzers.Options`` of ``add_analysis_arguments``' options, after
    checking each (UserError: one line naming the option)."""
    check_positive("--every", args.every)
    if args.probes < 2:
        raise UserError(f"--probes must be at least 2, got {args.probes}")
    check_positive("--checkpoint-batch", args.checkpoint_batch)
    from interp.analysis.llc import SGLDOverrides, check_overrides
    from interp.analysis.sharpness import SharpnessOverrides, resolve_sharpness
    from interp.analyzers import Options
    from interp.train.loop import resolve_device

    llc = _overrides(args, LLC_FLAGS, SGLDOverrides)
    check_overrides(llc)
    sharpness = _overrides(args, SHARPNESS_FLAGS, SharpnessOverrides)
    resolve_sharpness(sharpness)  # UserError naming the flag
    return Options(device=str(resolve_device(args.device)), probes=args.probes,
                   kernels=tuple(dict.fromkeys(args.kernels)),
                   checkpoint_batch=args.checkpoint_batch, llc=llc, sharpness=sharpness)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --quiet and --skip-resource-check, shared by the commands that train
    (interp.train, interp.sweep)."""
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--skip-resource-check", action="store_true",
                        help="train even when the estimated memory or checkpoint disk exceeds "
                             "what this machine has (see interp/resources.py)")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--compile and --matmul-precision (how the trainer's arithmetic runs, see
    ``interp.train.backend``), shared by interp.train and interp.bench."""
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="torch.compile the fast path's outputs, with CUDA graphs on CUDA "
                             "(opt-in: not yet measured on a GPU; default off)")
    parser.add_argument("--matmul-precision", choices=("highest", "high", "medium"),
                        default="highest",
                        help="opt-in reduced-precision float32 matmuls: 'high' allows TF32 on "
                             "CUDA, 'medium' bfloat16 (default: highest, plain float32)")
