"""``python -m interp.figures NAME ...``: write a figure set (HTML; PNG with kaleido).

HTML is always written; PNG too when kaleido and a Chromium are installed.

Each command lives in its own module as ``main(argv) -> int``; this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys

from interp.cli import run_main
from interp.errors import UserError

# command name -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "progress": ("interp.figures.cmd_progress",
                 "Nanda et al.'s progress-measures figures for one run"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.splitlines()[0].replace("``", "") + "\n\ncommands:")
        for name, (_, description) in sorted(COMMANDS.items()):
            print(f"  {name:16s} {description}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UserError(f"unknown figure command {name!r}; choose one of "
                        f"{', '.join(sorted(COMMANDS)) or '(none yet)'}")
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(run_main(main))
