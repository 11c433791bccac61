"""How a rule's job reports: its log file, and what it says when it fails.

A `UserError` (bad inputs, a refused config key or checkpoint, a missing
file the user names) ends the job with its message alone, one line or one
short list, because the fix is in the user's hands. Any other exception is a
bug, or something nobody foresaw: it is logged with its whole traceback, to
the rule's log file as well as to stderr, so that the log Snakemake points at
holds what a bug report needs.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("saldissect")


class UserError(Exception):
    """A problem the user can fix (inputs, config, files): reported without a traceback."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the user's config or data names that is not there (or not readable)."""


def configure_logging(log_path: str | None = None) -> None:
    """Log records to the rule's log file and to stderr (every stage's format)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def setup(log_path: str | None = None, threads: int | None = None) -> None:
    """What every rule's script does first: logging to ``log_path`` (and stderr),
    `report_failure` for an uncaught exception, and ``threads`` torch threads
    where the job's code has imported torch (table and figure stages never do,
    and this does not import it for them)."""
    configure_logging(log_path)
    sys.excepthook = report_failure
    torch = sys.modules.get("torch")
    if threads is not None and torch is not None:
        torch.set_num_threads(max(1, threads))


def report_failure(kind, error, trace) -> None:
    """A `UserError` as its message; anything else with its traceback, both logged
    (so they reach the rule's log). The interpreter still exits with status 1."""
    if issubclass(kind, UserError):
        log.error("%s", error)
    else:
        log.critical("unexpected %s", kind.__name__, exc_info=(kind, error, trace))
