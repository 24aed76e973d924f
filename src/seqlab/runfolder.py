"""Run folders: the one place that decides whether a run may write into its `--out` folder.

A run folder holds one run: its bundle files, `checkpoints/` and `logs/`. Before any data is
read, `claim(out, ...)`:

- refuses an `--out` that is a file, cannot be created or written, or holds another run's
  bundle or checkpoints (unless `--overwrite`, which first removes exactly those files, or
  `--resume`, which continues the run whose checkpoints are there);
- takes the folder's lock, `.seqlab.lock`, holding the owner's pid and host. A second run
  into the same folder refuses while the owner lives; a lock left by a dead process (killed,
  power cut) is taken over.

`claim` is a context manager; the lock is released when the block ends, and a run that
fails before writing its bundle leaves no bundle file behind (config.json is always written
last, so a folder without it is never mistaken for a bundle).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqlab.errors import SeqlabError

LOCK_NAME = ".seqlab.lock"
# what a run writes into its folder (and what --overwrite removes); other files are left alone
BUNDLE_FILES = ("config.json", "metrics.json", "tokenizer.json", "model.safetensors", "linear.json",
                "linear.safetensors", "training_curves.png", "confusion.png")
RUN_DIRS = ("checkpoints", "logs")


def is_secondary_rank() -> bool:
    """A non-zero rank of a distributed run: rank 0 owns the folder (and its lock)."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _describe_bundle(out: Path) -> str:
    try:
        meta = json.loads((out / "config.json").read_text(encoding="utf-8"))
        return f"a {meta.get('family', '?')} {meta.get('task', '?')} bundle"
    except (OSError, ValueError):
        return "a bundle"


def check_out(out: Path, *, overwrite: bool = False, resume: bool = False, flag: str = "--out") -> None:
    """Refuse at once (one line) an `out` this run must not write into."""
    if out.exists() and not out.is_dir():
        raise SeqlabError(f"{flag} {out}: is a file, not a folder; choose another {flag}")
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise SeqlabError(f"{flag} {out}: the folder is not writable; choose another {flag}")
        if overwrite or resume:
            return
        if (out / "config.json").is_file():
            raise SeqlabError(f"{flag} {out}: holds {_describe_bundle(out)} already; pass --overwrite to "
                              f"replace it, or choose another {flag}")
        if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
            raise SeqlabError(f"{flag} {out}: holds the checkpoints of an unfinished run; pass --resume to "
                              "continue it or --overwrite to start over")
        return
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise SeqlabError(f"{flag} {out}: cannot create the folder there ({parent} is not writable)")


def clear(out: Path) -> None:
    """--overwrite: remove the previous run's bundle files, checkpoints and logs (only those)."""
    for name in BUNDLE_FILES:
        (out / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def acquire(out: Path) -> Path:
    """Take `out`'s lock (a file created exclusively, holding our pid and host); take over a
    stale one; refuse when a live process holds it."""
    path = out / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(path)
            pid, host = owner.get("pid"), owner.get("host")
            if isinstance(pid, int) and (host not in (None, me["host"]) or _alive(pid)):
                where = "" if host in (None, me["host"]) else f" on {host}"
                raise SeqlabError(f"{out}: another seqlab run (pid {pid}{where}) is writing into this folder; "
                                  f"wait for it to end or choose another --out (remove {path} if that run is "
                                  "gone)") from None
            path.unlink(missing_ok=True)  # stale: its owner is dead
            continue
        except OSError as exc:
            raise SeqlabError(f"{out}: cannot write into the folder ({exc.strerror})") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        return path
    raise SeqlabError(f"{out}: could not take the folder's lock {path}")


def release(path: Path) -> None:
    if _read_lock(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextmanager
def claim(out: str | Path, *, overwrite: bool = False, resume: bool = False,
          flag: str = "--out") -> Iterator[Path]:
    """Check `out`, lock it for this process, clear it on --overwrite; release on exit. A
    failed run removes the bundle files it may have begun (never another run's)."""
    out = Path(out)
    if is_secondary_rank():  # rank 0 checked and locked the folder for the whole run
        yield out
        return
    check_out(out, overwrite=overwrite, resume=resume, flag=flag)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqlabError(f"{flag} {out}: cannot create the folder ({exc.strerror})") from None
    lock = acquire(out)
    try:
        if overwrite and not resume:
            clear(out)
        yield out
    except BaseException:
        if not (out / "config.json").is_file():  # an unfinished bundle: never leave half of one
            for name in BUNDLE_FILES:
                (out / name).unlink(missing_ok=True)
        raise
    finally:
        release(lock)
        try:
            out.rmdir()  # nothing was written (a run that failed before any output)
        except OSError:
            pass


def absolute_sources(cfg) -> None:
    """Data settings that name existing files or folders become absolute paths, so a bundle's
    `seqlab test DIR` finds its data from any working directory."""
    for name in ("source", "test_data", "data_dir", "source_file", "target_file", "valid_source",
                 "valid_target", "test_source", "test_target"):
        value = getattr(cfg.data, name, None)
        if isinstance(value, str) and value and value != "-" and os.path.exists(value):
            setattr(cfg.data, name, str(Path(value).resolve()))


def check_report_folder(out: Path, marker: str, overwrite: bool) -> None:
    """A folder of several runs and a report (compare, cross-validation): refused when it is a
    file, not writable, or already holds such a report (`marker`) and `overwrite` is off."""
    check_out(out, overwrite=True)  # a file, an unwritable folder
    if (out / marker).is_file() and not overwrite:
        raise SeqlabError(f"--out {out}: holds a previous report ({marker}); pass --overwrite to replace it, "
                          "or choose another --out")
