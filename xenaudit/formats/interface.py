"""What every report format promises, and how the run picks which to write.

Each format turns the same finished `AuditReport` into files under one output
directory. They are independent so that `--format` can choose any subset and a
failure in one (say a full disk while writing the HTML) still leaves the
others written.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from xenaudit.report import AuditReport

#: Format names in the order they are written. The Prometheus file comes last:
#: its timestamp tells monitoring that the whole run's outputs are in place.
FORMAT_NAMES: tuple[str, ...] = ("patches", "json", "csv", "html", "prom")


class FormatError(Exception):
    """A report output could not be written. Names the format and what went wrong."""

    def __init__(self, format_name: str, message: str, written: Iterable[Path] = ()) -> None:
        super().__init__(f"{format_name}: {message}")
        self.format_name = format_name
        self.message = message
        #: Files that were written despite the error (the other formats went on).
        self.written: list[Path] = list(written)
        #: Tracebacks of unexpected exceptions (bugs) among the failures.
        self.tracebacks: list[str] = []


class ReportFormat(ABC):
    """One output of the audit."""

    #: Name used by `--format` and in `FORMATS`.
    name: str = ""

    @abstractmethod
    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        """Write this format's files under `outdir` (which exists); return their paths.

        Every file is replaced atomically. Raises `FormatError`.
        """


#: Registry of the built-in formats, filled by `xenaudit.formats` on import.
FORMATS: dict[str, type[ReportFormat]] = {}


def resolve_names(names: Iterable[str]) -> list[str]:
    """Known format names from a user's choice, deduplicated, in writing order."""
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip().lower()
        if name == "all":
            wanted.update(FORMATS)
            continue
        if name not in FORMATS:
            known = ", ".join(FORMAT_NAMES)
            raise FormatError(name, f"unknown format (known: {known}, all)")
        wanted.add(name)
    order = {name: i for i, name in enumerate(FORMAT_NAMES)}
    return sorted(wanted, key=lambda n: (order.get(n, len(order)), n))


def write_formats(report: AuditReport, outdir: Path, names: Iterable[str]) -> list[Path]:
    """Write the chosen formats; keep going past a failing one, then raise for all failures.

    The raised `FormatError` carries the files that were written in `.written`.
    """
    chosen = resolve_names(names)
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError("output", f"cannot create {outdir}: {exc}") from exc
    written: list[Path] = []
    failures: list[str] = []
    tracebacks: list[str] = []
    for name in chosen:
        try:
            written.extend(FORMATS[name]().write(report, outdir))
        except FormatError as exc:
            written.extend(exc.written)
            failures.append(str(exc))
        except (OSError, UnicodeError, ValueError) as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # a bug in one format must not cost the others
            failures.append(f"{name}: internal error: {type(exc).__name__}: {exc}")
            tracebacks.append(f"writing {name}:\n{traceback.format_exc()}")
    if failures:
        error = FormatError(",".join(chosen), "; ".join(failures), written)
        error.tracebacks = tracebacks
        raise error
    return written
