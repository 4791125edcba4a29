"""doit's entry point, with storage failures as messages: doit prints a traceback for any exception its
`run` command raises, and its dependency database (`.mochi/doit.sqlite3`) fails that way on a full or
read-only disk ("database or disk is full")."""

from __future__ import annotations

import sqlite3
from typing import Any

from doit.cmd_run import Run
from doit.dependency import DatabaseException
from doit.doit_cmd import DoitMain

from .errors import BridgeError, StorageError, storage_error

__all__ = ["BridgeDoitMain", "StorageAbort"]


class StorageAbort(BaseException):
    """Not an Exception on purpose: doit's catch-all lets it by.

    Carries a :class:`BridgeError` through doit's `except Exception` to the caller of :meth:`run`."""

    def __init__(self, error: BridgeError) -> None:
        super().__init__(str(error))
        self.error = error


class _Run(Run):  # type: ignore[misc]
    name = "run"  # doit names a command after its class otherwise

    def execute(self, params: Any, args: Any) -> Any:
        try:
            return super().execute(params, args)
        except OSError as exc:
            raise StorageAbort(storage_error(exc)) from None
        except (sqlite3.Error, DatabaseException) as exc:
            detail = str(exc).rsplit("Original error: ", 1)[-1]
            raise StorageAbort(StorageError(
                f"{params.get('dep_file', '.mochi/doit.sqlite3')}: the task state database cannot be used: {detail}",
                "if the disk is full, free space and rerun; if it is read-only, make the project writable; a "
                "damaged state file goes with `mochi-py clean`")) from None


class BridgeDoitMain(DoitMain):  # type: ignore[misc]
    DOIT_CMDS = tuple(_Run if cmd is Run else cmd for cmd in DoitMain.DOIT_CMDS)

    def run(self, all_args: list[str]) -> int:
        """doit's `run`; a storage failure is raised as its :class:`BridgeError` instead of printed."""
        try:
            return int(super().run(all_args))
        except StorageAbort as abort:
            raise abort.error from None
