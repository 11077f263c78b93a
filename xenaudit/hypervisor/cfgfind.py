"""Finding the xl.cfg a running domain was created from.

Order: the inventory's `cfg_path`, then `<cfg_dir>/<NAME>.cfg`, then
`<cfg_dir>/<NAME>`, then any file in cfg_dir or cfg_dir/auto (the
xendomains autostart folder) whose `name =` is the domain's name.

That last step reads every file of the folder, so a run reads them once
into a `CfgIndex` (declared name -> files) and every domain looks itself up
there: linear in the folder, not domains x files. Building the index stops
at the run's deadline, and the domains it did not reach are told so.

Domain names come from the hypervisor and are hostile: a name is only
turned into a file name when it is a plain one, and the result must sit
directly in cfg_dir. Files found by their `name =` may be symlinks (auto/
holds links); the real file is returned, because that is what a patch must
change. Backups, editor leftovers, package-manager copies and xl.conf are
never taken for a domain's cfg, and two files claiming the same name are
reported rather than guessed between.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from xenaudit.hypervisor.xlcfg_read import CfgReadError, read_cfg_facts
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec

#: Larger files are not xl.cfg files (and are not read whole).
MAX_CFG_BYTES = 1024 * 1024
_MAX_LINK_HOPS = 16

_NOT_A_CFG = re.compile(
    r"""^(
        xl\.conf.* | xend-config.* | xl-devd.* | cpupool.* | README.* | .*\.(sxp|xml|sh|py)
      | .*~ | .*\.(sw[op]|tmp|rej|orig|save|sav|dist|disabled|rpmnew|rpmsave)
      | .*\.(dpkg|ucf)-[a-z]+ | .*\.(bak|old|backup)(\.[^/]*)? | .*\.xenaudit-[a-z]+.*
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


def _under_root(path: str, root: Path) -> Path:
    """`path` as seen from `root` (tests use a scratch directory as /)."""
    p = Path(path)
    return root / p.relative_to(p.anchor) if p.is_absolute() else root / p


def real_path(path: Path, root: Path = Path("/")) -> Path:
    """Follow symlinks by hand so absolute link targets stay under `root`."""
    current = path
    for _ in range(_MAX_LINK_HOPS):
        if not current.is_symlink():
            return Path(os.path.normpath(current))
        target = Path(os.readlink(current))
        current = (
            _under_root(str(target), root) if target.is_absolute() else current.parent / target
        )
    return Path(os.path.normpath(current))


def is_plain_domain_name(name: str) -> bool:
    """Whether a domain name can safely become a file name in cfg_dir."""
    return (
        0 < len(name) <= 200
        and name not in (".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and all(ch.isprintable() for ch in name)
    )


def looks_like_domain_cfg(file_name: str) -> bool:
    return not file_name.startswith(".") and not _NOT_A_CFG.match(file_name)


def _read_text(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CFG_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_CFG_BYTES or b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _declared_name(path: Path) -> tuple[str | None, str | None]:
    """(name, error) of a cfg file."""
    text = _read_text(path)
    if text is None:
        return None, f"{path} cannot be read as a text file"
    try:
        return read_cfg_facts(text, str(path)).name, None
    except CfgReadError as exc:
        return None, f"{path} does not parse: {exc}"


class CfgIndex:
    """Every cfg file of one cfg folder (and its auto/) by the `name =` it declares.

    Built on first use and kept for the run. `deadline` (a time.monotonic()
    value) stops the reading early; `cut_short` then says how far it got.
    """

    def __init__(self, cfg_dir: Path, root: Path = Path("/"), deadline: float | None = None):
        self.cfg_dir = cfg_dir
        self.root = root
        self.deadline = deadline
        self._names: dict[str, dict[Path, Path]] | None = None
        self.files_read = 0
        self.cut_short: str | None = None

    @classmethod
    def for_host(
        cls, spec: HypervisorSpec, root: Path = Path("/"), deadline: float | None = None
    ) -> CfgIndex:
        """The index of `spec`'s cfg folder, with `root` taken as `/`."""
        return cls(_under_root(spec.cfg_dir, root), root, deadline)

    def matches(self, domain_name: str) -> dict[Path, Path]:
        """Real path -> the entry found for it, of every file declaring `domain_name`."""
        return self.declared().get(domain_name, {})

    def declared(self) -> dict[str, dict[Path, Path]]:
        """Every declared name -> {real path: the entry found for it}."""
        if self._names is None:
            self._names = self._build()
        return self._names

    def _build(self) -> dict[str, dict[Path, Path]]:
        names: dict[str, dict[Path, Path]] = {}
        for folder in (self.cfg_dir, self.cfg_dir / "auto"):
            try:
                # Sorted by name (a string sort; Path comparisons cost far more).
                entries = sorted(os.listdir(folder))
            except OSError:
                continue
            for entry_name in entries:
                entry = folder / entry_name
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self.cut_short = (
                        f"reading the cfg folder stopped at the run's deadline after "
                        f"{self.files_read} files"
                    )
                    return names
                if not looks_like_domain_cfg(entry.name):
                    continue
                real = real_path(entry, self.root)
                if not real.is_file():
                    continue
                self.files_read += 1
                declared, _ = _declared_name(real)
                if declared is not None:
                    names.setdefault(declared, {}).setdefault(real, entry)
        return names


def find_cfg(
    domain_name: str,
    spec: HypervisorSpec,
    override: DomainOverride,
    root: Path = Path("/"),
    index: CfgIndex | None = None,
) -> tuple[Path | None, str | None]:
    """(path, note): the domain's cfg file, or None and a note saying why not.

    A note next to a path tells something worth knowing (it does not parse).
    `index` is the run's index of this host's cfg folder (one is made when
    none is given, for a single lookup).
    """
    cfg_dir = _under_root(spec.cfg_dir, root)
    if override.cfg_path:
        given = Path(override.cfg_path)
        path = _under_root(str(given), root) if given.is_absolute() else cfg_dir / given
        real = real_path(path, root)
        if real.is_file():
            return real, None
        return None, f"cfg_path {override.cfg_path} from the inventory is not a file"
    if not cfg_dir.is_dir():
        return None, f"cfg_dir {spec.cfg_dir} is not a directory"

    notes: list[str] = []
    if is_plain_domain_name(domain_name):
        for candidate in (cfg_dir / f"{domain_name}.cfg", cfg_dir / domain_name):
            if candidate.parent != cfg_dir:
                continue
            real = real_path(candidate, root)
            if not real.is_file():
                continue
            declared, error = _declared_name(real)
            if error is not None:
                # Its conventional name makes it the cfg; let the later stages
                # report the syntax error against this domain.
                return real, error
            if declared == domain_name:
                return real, None
            notes.append(f"{candidate.name} declares name = {declared!r}")
    else:
        notes.append("the domain name cannot be a file name, so only name = was searched")

    if index is None:
        index = CfgIndex(cfg_dir, root)
    elif index.cfg_dir != cfg_dir:
        raise ValueError(f"the index of {index.cfg_dir} was given for {cfg_dir}")
    matches = index.matches(domain_name)
    if len(matches) == 1:
        return next(iter(matches)), None
    if len(matches) > 1:
        listed = ", ".join(str(p) for p in matches)
        return None, (
            f"several files declare name = {domain_name!r} ({listed}); "
            "set cfg_path for this domain in the inventory"
        )
    notes.insert(0, f"no file in {spec.cfg_dir} or its auto/ declares name = {domain_name!r}")
    if index.cut_short is not None:
        notes.append(index.cut_short)
    return None, "; ".join(notes)
