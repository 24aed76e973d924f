"""Command line: argument parsing only; each verb calls one typed library function.

- parser.py   the grammar: a sub-parser per verb (help text, example), setting flags for the
              training verbs only
- verbs.py    cmd_<verb>: parse, call one library function, print; the COMMANDS table

Errors a user can cause are SeqlabError: printed as one line, exit status 2, no traceback.
"""

from __future__ import annotations

import os
import sys
import warnings

from seqlab.cli.parser import SETTING_VERBS, UsageError, build_parser
from seqlab.cli.verbs import COMMANDS
from seqlab.errors import SeqlabError

__all__ = ["COMMANDS", "SETTING_VERBS", "UsageError", "build_parser", "main"]


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        os.environ["SEQLAB_VERBOSE"] = "1"
        return
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # reaches DDP worker processes too


def _verb_of(argv: list[str]) -> str | None:
    """The verb named on the command line: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_verb_of(argv))
    try:
        args, extras = parser.parse_known_args(argv)
        # texts after an option (`translate DIR --beam 5 "Ein Hund."`): argparse leaves them over
        if extras and isinstance(getattr(args, "texts", None), list) and not any(e.startswith("-") for e in extras):
            args.texts += extras
        elif extras:
            verb = getattr(args, "verb", None)
            raise UsageError(f"unrecognized arguments: {' '.join(extras)}", f"seqlab {verb}" if verb else "seqlab")
    except UsageError as exc:
        print(f"seqlab: error: {exc}\n{exc.hint}", file=sys.stderr)
        return 2
    if not args.verb:
        parser.print_help()
        return 0
    _quiet_libraries(args.verbose)
    try:
        COMMANDS[args.verb](args)
    except SeqlabError as exc:
        print(f"seqlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = args.verb in ("train", "tune") and getattr(args, "out", None)
        print("seqlab: interrupted" + ("; resume with --resume" if resumable else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the system refused a file or folder: permissions, a full disk, a missing folder
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"seqlab: error: {where}{exc.strerror or exc}; check the path and its permissions", file=sys.stderr)
        return 2
    return 0
