"""ctypes wrapper around Xen's own xl.cfg parser (libxlutil), used as the judge.

Only public libxlutil calls are used to read values (xlu_cfg_get_long,
_get_string, _get_list, _get_listitem, _get_listitem2, _value_type,
_value_get_string, _value_get_list).  libxlutil has no call that lists the
keys of a file, so `snapshot` walks the settings list through the layout of
``struct XLU_Config`` / ``XLU_ConfigSetting`` from libxlu_internal.h (the
layout with the ``op`` field that ``+=`` support added).  `disagreements`
cross-checks what that walk finds against the public getters.

libxlutil aborts the whole process on a NUL byte inside a quoted string (an
assert in xlu__cfgl_dequote).  `IsolatedJudge` runs it in a child process for
such inputs, so a test can observe the abort instead of dying from it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libxlutil.so.4.17",
    *sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libxlutil.so*")),
    *sorted(glob.glob("/usr/lib/*/libxlutil.so*")),
    *sorted(glob.glob("/usr/lib64/libxlutil.so*")),
    *sorted(glob.glob("/usr/local/lib/libxlutil.so*")),
)

XLU_STRING = 0
XLU_LIST = 1
XLU_OP_ADDITION = 1

ESRCH = errno.ESRCH
EINVAL = errno.EINVAL
ERANGE = errno.ERANGE

Tree = bytes | list["Tree"]


def library_path() -> str | None:
    override = os.environ.get("XENAUDIT_LIBXLUTIL")
    if override:
        return override if os.path.exists(override) else None
    for path in CANDIDATES:
        if os.path.exists(path):
            return path
    found = ctypes.util.find_library("xlutil")
    return found


def available() -> bool:
    return library_path() is not None


class _Setting(ctypes.Structure):
    pass


# libxlu_internal.h: struct XLU_ConfigSetting { next; name; value; op; lineno; }
_Setting._fields_ = [
    ("next", ctypes.POINTER(_Setting)),
    ("name", ctypes.c_char_p),
    ("value", ctypes.c_void_p),
    ("op", ctypes.c_int),
    ("lineno", ctypes.c_int),
]


class _Config(ctypes.Structure):
    # struct XLU_Config { XLU_ConfigSetting *settings; FILE *report; char *config_source; }
    _fields_ = [
        ("settings", ctypes.POINTER(_Setting)),
        ("report", ctypes.c_void_p),
        ("config_source", ctypes.c_char_p),
    ]


@dataclass
class Snapshot:
    """Everything libxlutil says about one input, as plain Python data.

    `names` lists assignments in file order as (key, op); `long`, `string`
    and `listitems` hold (rc, value) per key from the public getters; `tree`
    holds the full value (bytes atoms, nested lists) read via listitem2.
    """

    rc: int
    report: str
    names: list[tuple[str, int]] = field(default_factory=list)
    long: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    string: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    listitems: dict[str, tuple[int, list[bytes | None] | None]] = field(default_factory=dict)
    tree: dict[str, Tree] = field(default_factory=dict)
    aborted: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.aborted

    def key_order(self) -> list[str]:
        seen: dict[str, None] = {}
        for name, _op in self.names:
            seen.setdefault(name, None)
        return list(seen)

    def to_json(self) -> str:
        def enc(v: Any) -> Any:
            if isinstance(v, bytes):
                return {"b": v.hex()}
            if isinstance(v, list | tuple):
                return [enc(x) for x in v]
            if isinstance(v, dict):
                return {k: enc(x) for k, x in v.items()}
            return v

        return json.dumps(
            {
                "rc": self.rc,
                "report": self.report,
                "names": [[n, op] for n, op in self.names],
                "long": enc(self.long),
                "string": enc(self.string),
                "listitems": enc(self.listitems),
                "tree": enc(self.tree),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        def dec(v: Any) -> Any:
            if isinstance(v, dict) and set(v) == {"b"}:
                return bytes.fromhex(v["b"])
            if isinstance(v, list):
                return [dec(x) for x in v]
            if isinstance(v, dict):
                return {k: dec(x) for k, x in v.items()}
            return v

        d = json.loads(text)
        return cls(
            rc=d["rc"],
            report=d["report"],
            names=[(n, op) for n, op in d["names"]],
            long={k: (v[0], v[1]) for k, v in d["long"].items()},
            string={k: (v[0], dec(v[1])) for k, v in d["string"].items()},
            listitems={k: (v[0], dec(v[1])) for k, v in d["listitems"].items()},
            tree={k: dec(v) for k, v in d["tree"].items()},
        )


class LibXlutil:
    """The loaded library plus the libc calls needed to capture its reports."""

    def __init__(self, path: str | None = None) -> None:
        path = path or library_path()
        if path is None:
            raise OSError("libxlutil not found")
        self.path = path
        lib = ctypes.CDLL(path)
        libc = ctypes.CDLL(None)
        self._lib = lib
        self._libc = libc

        libc.open_memstream.restype = ctypes.c_void_p
        libc.open_memstream.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        libc.fflush.argtypes = [ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.free.argtypes = [ctypes.c_void_p]

        lib.xlu_cfg_init.restype = ctypes.POINTER(_Config)
        lib.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.xlu_cfg_readdata.restype = ctypes.c_int
        lib.xlu_cfg_readdata.argtypes = [ctypes.POINTER(_Config), ctypes.c_char_p, ctypes.c_int]
        lib.xlu_cfg_destroy.restype = None
        lib.xlu_cfg_destroy.argtypes = [ctypes.POINTER(_Config)]
        lib.xlu_cfg_get_long.restype = ctypes.c_int
        lib.xlu_cfg_get_long.argtypes = [
            ctypes.POINTER(_Config),
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_long),
            ctypes.c_int,
        ]
        lib.xlu_cfg_get_string.restype = ctypes.c_int
        lib.xlu_cfg_get_string.argtypes = [
            ctypes.POINTER(_Config),
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
        ]
        lib.xlu_cfg_get_list.restype = ctypes.c_int
        lib.xlu_cfg_get_list.argtypes = [
            ctypes.POINTER(_Config),
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        lib.xlu_cfg_get_listitem.restype = ctypes.c_char_p
        lib.xlu_cfg_get_listitem.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.xlu_cfg_get_listitem2.restype = ctypes.c_void_p
        lib.xlu_cfg_get_listitem2.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.xlu_cfg_value_type.restype = ctypes.c_int
        lib.xlu_cfg_value_type.argtypes = [ctypes.c_void_p]
        lib.xlu_cfg_value_get_string.restype = ctypes.c_int
        lib.xlu_cfg_value_get_string.argtypes = [
            ctypes.POINTER(_Config),
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
        ]
        lib.xlu_cfg_value_get_list.restype = ctypes.c_int
        lib.xlu_cfg_value_get_list.argtypes = [
            ctypes.POINTER(_Config),
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
        ]

    # -- low level -------------------------------------------------------

    def readdata_rc(self, data: bytes, source: str = "cfg") -> int:
        """Only parse (for the benchmark): return xlu_cfg_readdata's result."""
        cfg = self._lib.xlu_cfg_init(self._null_stream(), source.encode())
        try:
            return self._lib.xlu_cfg_readdata(cfg, data, len(data))
        finally:
            self._lib.xlu_cfg_destroy(cfg)

    def _null_stream(self) -> int:
        if not hasattr(self, "_devnull"):
            self._libc.fopen.restype = ctypes.c_void_p
            self._libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            self._devnull = self._libc.fopen(b"/dev/null", b"w")
        return self._devnull

    def _tree(self, cfg: Any, value: int) -> Tree:
        if self._lib.xlu_cfg_value_type(value) == XLU_STRING:
            out = ctypes.c_char_p()
            rc = self._lib.xlu_cfg_value_get_string(cfg, value, ctypes.byref(out), 1)
            assert rc == 0
            return out.value or b""
        lst = ctypes.c_void_p()
        rc = self._lib.xlu_cfg_value_get_list(cfg, value, ctypes.byref(lst), 1)
        assert rc == 0
        items: list[Tree] = []
        i = 0
        while True:
            item = self._lib.xlu_cfg_get_listitem2(lst, i)
            if not item:
                return items
            items.append(self._tree(cfg, item))
            i += 1

    # -- the judge -------------------------------------------------------

    def snapshot(self, data: bytes, source: str = "cfg") -> Snapshot:
        """Parse `data` and read every key back through the public getters."""
        buf = ctypes.c_void_p()
        size = ctypes.c_size_t()
        stream = self._libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
        cfg = self._lib.xlu_cfg_init(stream, source.encode())
        try:
            rc = self._lib.xlu_cfg_readdata(cfg, data, len(data))
            snap = Snapshot(rc=rc, report="")
            if rc == 0:
                self._read_all(cfg, snap)
        finally:
            self._lib.xlu_cfg_destroy(cfg)
            self._libc.fflush(stream)
            report = ctypes.string_at(buf.value, size.value) if buf.value else b""
            self._libc.fclose(stream)
            self._libc.free(buf.value)
        snap.report = report.decode("utf-8", "replace")
        return snap

    def _read_all(self, cfg: Any, snap: Snapshot) -> None:
        names: list[tuple[str, int]] = []
        node = cfg.contents.settings
        while node:
            s = node.contents
            names.append((s.name.decode("latin-1"), s.op))
            node = s.next
        names.reverse()  # the C list is newest first
        snap.names = names
        for key in snap.key_order():
            k = key.encode("latin-1")
            lv = ctypes.c_long()
            rc = self._lib.xlu_cfg_get_long(cfg, k, ctypes.byref(lv), 1)
            snap.long[key] = (rc, lv.value if rc == 0 else None)
            sv = ctypes.c_char_p()
            rc = self._lib.xlu_cfg_get_string(cfg, k, ctypes.byref(sv), 1)
            snap.string[key] = (rc, sv.value if rc == 0 else None)
            lst = ctypes.c_void_p()
            n = ctypes.c_int()
            rc = self._lib.xlu_cfg_get_list(cfg, k, ctypes.byref(lst), ctypes.byref(n), 1)
            if rc == 0:
                items = [self._lib.xlu_cfg_get_listitem(lst, i) for i in range(n.value)]
                snap.listitems[key] = (rc, items)
                snap.tree[key] = [
                    self._tree(cfg, self._lib.xlu_cfg_get_listitem2(lst, i)) for i in range(n.value)
                ]
            else:
                snap.listitems[key] = (rc, None)
                assert snap.string[key][1] is not None
                snap.tree[key] = snap.string[key][1]  # type: ignore[assignment]

    def get_long(self, data: bytes, key: str) -> tuple[int, int | None]:
        snap = self.snapshot(data)
        if not snap.ok:
            raise ValueError(f"libxlutil rejects the input: {snap.report}")
        return snap.long.get(key, (ESRCH, None))


_WORKER = r"""
import struct, sys
sys.path.insert(0, sys.argv[1])
from tests.libxlutil import LibXlutil
lib = LibXlutil(sys.argv[2])
inp = sys.stdin.buffer
out = sys.stdout
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    (n,) = struct.unpack("<I", head)
    data = inp.read(n)
    out.write(lib.snapshot(data).to_json() + "\n")
    out.flush()
"""


class IsolatedJudge:
    """libxlutil in a child process, so that its abort() cannot take pytest down."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or library_path()
        if self.path is None:
            raise OSError("libxlutil not found")
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, repo, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def snapshot(self, data: bytes) -> Snapshot:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(struct.pack("<I", len(data)) + data)
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            proc.wait()
            self._proc = None
            return Snapshot(rc=-1, report=f"libxlutil died (exit {proc.returncode})", aborted=True)
        return Snapshot.from_json(line.decode())

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait()
            self._proc = None


def _tree_bytes(value: Any) -> Tree:
    if isinstance(value, list):
        return [_tree_bytes(v) for v in value]
    return value.encode("utf-8", "surrogateescape")


def disagreements(cfg: Any, snap: Snapshot) -> list[str]:
    """Where a parsed `XlConfig` and a libxlutil `Snapshot` of the same bytes differ.

    Compares the keys and their order, the ``=``/``+=`` operator of every
    assignment, and what get_long, get_string and get_list return for every key.
    """
    out: list[str] = []
    ours_names = [(a.key, XLU_OP_ADDITION if a.op == "+=" else 0) for a in cfg.statements]
    if ours_names != snap.names:
        out.append(f"assignments: ours {ours_names} libxlutil {snap.names}")
    if cfg.keys() != snap.key_order():
        out.append(f"keys: ours {cfg.keys()} libxlutil {snap.key_order()}")
    for key in snap.key_order():
        rc, value = snap.long[key]
        read = cfg.read_long(key)
        if read.value != value or (rc == 0) != (read.problem is None):
            out.append(f"get_long({key}): ours {read} libxlutil {(rc, value)}")
        elif rc == ERANGE and read.problem != "range":
            out.append(f"get_long({key}): ours {read.problem} libxlutil ERANGE")
        s = cfg.get_string(key)
        ours_s = s.encode("utf-8", "surrogateescape") if s is not None else None
        if ours_s != snap.string[key][1]:
            out.append(f"get_string({key}): ours {ours_s!r} libxlutil {snap.string[key][1]!r}")
        items = cfg.get_list(key)
        if (items is None) != (snap.listitems[key][1] is None):
            out.append(f"get_list({key}): ours {items!r} libxlutil {snap.listitems[key]!r}")
        elif items is not None:
            if _tree_bytes(items) != snap.tree[key]:
                out.append(f"list items({key}): ours {items!r} libxlutil {snap.tree[key]!r}")
            flat = [
                i.encode("utf-8", "surrogateescape") if isinstance(i, str) else None for i in items
            ]
            if flat != snap.listitems[key][1]:
                out.append(
                    f"get_listitem({key}): ours {flat!r} libxlutil {snap.listitems[key][1]!r}"
                )
    return out
