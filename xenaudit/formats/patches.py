"""patches/<name>.cfg.diff: the proposed xl.cfg changes, one reviewable file per domain.

The orchestrator decides each patch's relative path; this writer only refuses
paths that would land outside the report folder (absolute, `..`, or through a
symlink), because a domain name is guest-controlled and a patch is something
an admin will feed to `patch -p1` as root.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.formats.interface import FormatError, ReportFormat
from xenaudit.report import AuditReport, DomainReport
from xenaudit.snapshots import safe_name

PATCH_DIR = "patches"
PATCH_SUFFIX = ".cfg.diff"


def default_patch_path(domain: str, taken: set[str] | None = None) -> str:
    """Where a domain's patch goes when the orchestrator did not say."""
    return f"{PATCH_DIR}/{safe_name(domain, taken)}{PATCH_SUFFIX}"


def patch_paths(report: AuditReport) -> dict[int, str]:
    """Relative patch path of every domain that has a patch, keyed by its index in the report.

    Shared by every format, so report.json, the HTML and the files on disk agree
    even when the orchestrator left `patch_path` unset.
    """
    taken = {
        Path(d.patch_path).name.removesuffix(PATCH_SUFFIX)
        for d in report.domains
        if d.patch_text is not None and d.patch_path
    }
    paths: dict[int, str] = {}
    for index, dom in enumerate(report.domains):
        if dom.patch_text is None:
            continue
        paths[index] = dom.patch_path or default_patch_path(dom.name, taken)
    return paths


def _inside(outdir: Path, relative: str, domain: str) -> Path:
    """`outdir/relative`, or FormatError when it would escape `outdir`."""
    pure = PurePosixPath(relative)
    refused = (
        not relative.endswith(".diff")
        or pure.is_absolute()
        or "\\" in relative
        or "\0" in relative
        or any(part in ("..", ".") for part in relative.split("/"))
    )
    if refused:
        raise FormatError(PatchesFormat.name, f"{domain}: refusing patch path {relative!r}")
    target = outdir.joinpath(*pure.parts)
    root = outdir.resolve()
    # Resolve the parent too: a symlinked `patches` folder must not redirect the write.
    if not target.parent.resolve().is_relative_to(root) or target.is_symlink():
        raise FormatError(
            PatchesFormat.name, f"{domain}: patch path {relative!r} leaves the report folder"
        )
    return target


def _patch_bytes(dom: DomainReport) -> bytes:
    text = dom.patch_text or ""
    if text and not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8", errors="replace")


class PatchesFormat(ReportFormat):
    name = "patches"

    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        outdir = Path(outdir)
        written: list[Path] = []
        refused: list[str] = []
        claimed: dict[Path, str] = {}
        for index, relative in patch_paths(report).items():
            dom = report.domains[index]
            try:
                target = _inside(outdir, relative, dom.name)
                if target in claimed:
                    raise FormatError(
                        self.name,
                        f"{dom.name}: patch path {relative!r} is also used by {claimed[target]}",
                    )
                claimed[target] = dom.name
                # Folders below outdir are made and entered without following links.
                atomic_write_bytes(target, _patch_bytes(dom), root=outdir)
            except FormatError as exc:
                refused.append(exc.message)
                continue
            except OSError as exc:
                refused.append(f"{dom.name}: cannot write {relative}: {exc}")
                continue
            written.append(target)
        if refused:
            raise FormatError(self.name, "; ".join(refused), written)
        return written
