"""``xenaudit cfg show|set|lint``: look at, edit and check xl.cfg files.

`add_parser` plugs the ``cfg`` command into the main CLI; `main` runs it on
its own (``python -m xenaudit.xlcfg.cli``).  Exit codes: 0 fine, 1 lint
found problems, 2 a file does not parse (nothing is written) or bad usage.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from xenaudit.printable import printable

# Nothing of the parser is imported for --help; the editor, the linter, the diff
# and the file-writing helpers only by the commands that use them.
TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

    from xenaudit.xlcfg.config import JsonValue, XlConfig
    from xenaudit.xlcfg.editor import EditValue

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2

_DECIMAL = r"-?[0-9]+\Z"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``cfg`` on an argparse subparsers object; the handler is ``args.func``.

    ``args.func(args)`` returns the exit code.
    """
    cfg = subparsers.add_parser(
        "cfg",
        help="show, edit or lint xl.cfg files as xl reads them",
        description="Read, edit and check xl domain configuration files (xl.cfg(5)).",
    )
    sub = cfg.add_subparsers(dest="cfg_command", metavar="COMMAND")
    sub.required = True

    show = sub.add_parser("show", help="every setting with the value xl uses")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--json", action="store_true", help="one JSON object key -> value")
    show.set_defaults(func=_cmd_show)

    st = sub.add_parser(
        "set",
        help="print the diff that sets KEY=VALUE (apply it with --write)",
        description=(
            "VALUE is 512 (a number), \"text\" or 'text' (a string with that quoting),"
            " 0x200 (a number written as given) or [ ... ] (a list)."
        ),
    )
    st.add_argument("file", metavar="FILE")
    st.add_argument("assignments", metavar="KEY=VALUE", nargs="+")
    st.add_argument(
        "--write",
        action="store_true",
        help="replace FILE atomically, keeping the old one as FILE.xenaudit-STAMP.bak",
    )
    st.set_defaults(func=_cmd_set)

    ln = sub.add_parser("lint", help="report problems; exit 1 when any is found")
    ln.add_argument("files", metavar="FILE", nargs="+")
    ln.set_defaults(func=_cmd_lint)
    return cfg


def _read(path: str, err: TextIO) -> XlConfig | None:
    from xenaudit.xlcfg.config import parse
    from xenaudit.xlcfg.errors import CfgSyntaxError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(printable(f"xenaudit cfg: {path}: {e.strerror}"), file=err)
        return None
    try:
        return parse(data, path)
    except CfgSyntaxError as e:
        print(printable(f"xenaudit cfg: {e}"), file=err)
        return None


def _write_text(out: TextIO, text: str) -> None:
    """Write text that may carry surrogate escapes (non-UTF-8 bytes of the file)."""
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        buffer.write(text.encode("utf-8", "surrogateescape"))
        buffer.flush()
    else:
        out.write(text)


def show_value(value: JsonValue) -> str:
    """`value` as ``json.dumps(value, ensure_ascii=False)`` writes it.

    Numbers, plain strings and lists of them are written here; json is
    imported only for a string that needs escapes, so that `cfg show` starts
    faster (the tests compare the two on generated values).
    """
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        import json

        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(show_value(item) for item in value) + "]"


def show_json(values: dict[str, JsonValue]) -> str:
    """`values` as ``json.dumps(values, indent=2, ensure_ascii=False)`` writes them,
    built from show_value (json is imported only for strings that need escapes)."""

    def nested(value: JsonValue, indent: str) -> str:
        if not isinstance(value, list) or not value:
            return show_value(value)
        inner = indent + "  "
        items = ",\n".join(inner + nested(item, inner) for item in value)
        return f"[\n{items}\n{indent}]"

    if not values:
        return "{}"
    items = ",\n".join(f"  {show_value(k)}: {nested(v, '  ')}" for k, v in values.items())
    return "{\n" + items + "\n}"


def _cmd_show(args: argparse.Namespace) -> int:
    cfg = _read(args.file, sys.stderr)
    if cfg is None:
        return EXIT_UNUSABLE
    values = cfg.settings_as_xl_reads()
    if args.json:
        _write_text(sys.stdout, show_json(values) + "\n")
    else:
        lines = [f"{k} = {show_value(v)}\n" for k, v in values.items()]
        _write_text(sys.stdout, "".join(lines))
    return EXIT_OK


def parse_assignment(text: str) -> tuple[str, EditValue]:
    """``KEY=VALUE`` from the command line to a key and an editor value.

    Plain decimal -> int (written in the style of the value it replaces);
    a quoted string, another NUMBER spelling (0x.., 0..) or a list -> the
    text exactly as given, checked by the parser.
    """
    from xenaudit.xlcfg import lexer
    from xenaudit.xlcfg.editor import Raw
    from xenaudit.xlcfg.errors import CfgEditError, CfgSyntaxError

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CfgEditError(f"expected KEY=VALUE, got {text!r}")
    value = value.strip(" \t")
    if re.match(_DECIMAL, value):
        return key, int(value)
    if value[:1] in ("'", '"', "["):
        return key, Raw(value)
    try:
        kinds = [t.kind for t in lexer.tokenize(value) if t.kind != lexer.WS]
    except CfgSyntaxError:
        kinds = []
    if kinds == [lexer.NUMBER]:
        return key, Raw(value)
    raise CfgEditError(
        f'{key}: {value!r} is not an xl.cfg value; quote strings, e.g. {key}="{value}"'
    )


def _atomic_replace(path: str, data: bytes) -> str:
    """Write `data` over `path` through a temp file in the same directory; returns the backup.

    The old content is kept as PATH.xenaudit-STAMP.bak, created new beside the
    file (never over an older backup, never through a link); owner, mode and
    extended attributes of PATH are kept. Same mechanism as `xenaudit apply`.
    """
    from pathlib import Path

    from xenaudit.apply import files
    from xenaudit.apply.actionlog import iso, utc_now

    directory, name = os.path.split(path)
    stamp = iso(utc_now()).replace("-", "").replace(":", "")
    with files.directory(Path(directory or ".")) as dir_fd:
        old, _ = files.read_regular(dir_fd, name)
        owner = files.ownership_of(dir_fd, name)
        backup = files.create_backup(dir_fd, name, old, owner, stamp)
        files.replace(dir_fd, name, data, owner)
    return os.path.join(directory, backup)


def _cmd_set(args: argparse.Namespace) -> int:
    from xenaudit.xlcfg.editor import set_value
    from xenaudit.xlcfg.errors import CfgEditError
    from xenaudit.xlcfg.patch import unified_diff

    path = os.path.realpath(args.file)
    cfg = _read(path, sys.stderr)
    if cfg is None:
        return EXIT_UNUSABLE
    new = cfg
    try:
        for item in args.assignments:
            key, value = parse_assignment(item)
            new = set_value(new, key, value)
    except CfgEditError as e:
        print(printable(f"xenaudit cfg set: {e}"), file=sys.stderr)
        return EXIT_UNUSABLE
    before, after = cfg.to_bytes(), new.to_bytes()
    if before == after:
        return EXIT_OK
    _write_text(sys.stdout, unified_diff(path, before, after))
    if args.write:
        try:
            backup = _atomic_replace(path, after)
        except OSError as e:
            print(printable(f"xenaudit cfg set: cannot write {path}: {e}"), file=sys.stderr)
            return EXIT_UNUSABLE
        print(
            printable(f"xenaudit cfg set: {path} written; the old one is {backup}"), file=sys.stderr
        )
    return EXIT_OK


def _cmd_lint(args: argparse.Namespace) -> int:
    from xenaudit.xlcfg.linter import lint

    unusable = False
    found = False
    for path in args.files:
        cfg = _read(path, sys.stderr)
        if cfg is None:
            unusable = True
            continue
        for p in lint(cfg):
            found = True
            line = f"{path}:{p.line}:{p.column}: {p.severity}: {p.message} [{p.code}]"
            print(printable(line, one_line=True))
    if unusable:
        return EXIT_UNUSABLE
    return EXIT_PROBLEMS if found else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cfg`` on its own: ``python -m xenaudit.xlcfg.cli show FILE``."""
    parser = argparse.ArgumentParser(prog="xenaudit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    add_parser(subparsers)
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] != "cfg":
        args_list.insert(0, "cfg")
    args = parser.parse_args(args_list)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
