"""The shell probe that reads every source on a guest in one round trip.

One SSH exec per guest keeps a 50-guest run close to the cost of bare logins,
so everything is gathered by a single POSIX `sh` script sent on stdin to
`exec sh -s` (stdin, because a command line would show in `ps` and in audit
logs, and because it works whatever the login shell is).

Output framing: each source is printed between marker lines that start with
`XA<token>:`, where the token is fresh random hex for every guest. Text read
from the guest (a kernel log line, a process name) cannot contain the token
unless the guest already knows it, so it cannot fake a section boundary:

    \\nXA<token>:H:<uid>                                  once, first
    \\nXA<token>:B:<section>:<status>:<source>:<via>      section header
    <raw text>
    \\nXA<token>:E:<section>:<exit status>                section end
    \\nXA<token>:Z                                        probe finished

The header carries what is known before reading: `ok`, `missing` or `denied`,
the source (only for the kernel log) and `sudo` when the text came through
`sudo -n`. The end line carries the exit status, so a failing read becomes
`error` and a section that never ends (hang, cap, dropped link) `truncated`.
The newline before every marker is part of the marker, so the text between
two markers round-trips byte for byte.

Kernel log source, in order, and why (a source that fails or prints nothing
gives way to the next one; the collector keeps the one that answered):
1. `dmesg`: present on every distribution, cheap, and the ring buffer is
   where page-allocation-failure and OOM reports land first. Used directly
   as root or when `kernel.dmesg_restrict` is 0, else through `sudo -n`.
2. `journalctl -k -b -q --no-pager -o short-iso`: for logins that may read
   the journal (group `adm`/`systemd-journal`) but not the ring buffer. Not
   first because journalctl can take seconds and real CPU on large journals.
3. `/var/log/kern.log` (read directly, else through `sudo -n`).
Each is read from its end: `tail -c` keeps the newest `kernlog_max_bytes + 1`
bytes (the extra byte tells the collector the log was cut).

Read-only by construction: the script creates no files, runs no interactive
shell (so no history), and every external command gets `</dev/null`. Slow
commands run under coreutils `timeout` when it exists, so a hung `dmesg` does
not outlive the collector's own timeout on the guest. Busybox guests are
handled where cheap: their `ps` lacks `--sort` (its whole list is sent, in pid
order), and `timeout` is probed once. `sudo -n` is tried only when a source is
unreadable and at most once, because a refused sudo is logged (and sometimes
mailed) on the guest.
"""

from __future__ import annotations

import re
import secrets

#: What the collector runs; the probe itself arrives on stdin.
PROBE_COMMAND = "exec sh -s"

#: Order of sections in the output: cheap and important first, so a byte cap or
#: a dropped connection costs the kernel log rather than meminfo.
PROBE_ORDER: tuple[str, ...] = (
    "uname",
    "meminfo",
    "buddyinfo",
    "vmstat",
    "psi_memory",
    "sysvm",
    "balloon",
    "ps",
    "slabinfo",
    "kernlog",
)

MARKER_PREFIX = "XA"
_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def new_token() -> str:
    """A fresh unguessable token (128 bits) for one guest's markers."""
    return secrets.token_hex(16)


def marker(token: str) -> str:
    """The marker text (without the leading newline) for `token`."""
    return MARKER_PREFIX + token


def build_probe(
    token: str,
    *,
    kernlog_max_bytes: int,
    command_timeout_s: int,
    use_sudo: bool = True,
) -> str:
    """The probe script for one guest.

    Only validated integers and the hex token are put into the script, so
    nothing from an inventory or a guest can change what it runs.
    """
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError("token must be 32 lowercase hex digits")
    if kernlog_max_bytes < 0 or command_timeout_s < 1:
        raise ValueError("kernlog_max_bytes must be >= 0 and command_timeout_s >= 1")
    values = {
        "@MARKER@": marker(token),
        "@TAIL_BYTES@": str(int(kernlog_max_bytes) + 1),
        "@TIMEOUT_S@": str(int(command_timeout_s)),
        "@SUDO@": "1" if use_sudo else "0",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], _TEMPLATE)


# Kept as one template so the whole probe can be read (and reviewed) at once.
# Everything runs inside `main`, which is only called on the last line: the
# shell has then read the whole script, so no command can swallow part of it
# from stdin. @NAME@ placeholders are filled in by build_probe.
_TEMPLATE = r"""main() {
M=@MARKER@
N=@TAIL_BYTES@
SU=@SUDO@
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
U=$(id -u)
T=
# `-s KILL SECS` is the one syntax GNU and current busybox timeout share; try it once.
if command -v timeout >/dev/null && timeout -s KILL 9 true; then T="timeout -s KILL @TIMEOUT_S@"; fi
SC=
printf '\n%s:H:%s\n' "$M" "$U"

b() { printf '\n%s:B:%s:%s:%s:%s\n' "$M" "$1" "$2" "${3:--}" "${4:--}"; }
e() { printf '\n%s:E:%s:%s\n' "$M" "$1" "$2"; }
sx() {
  if [ -z "$SC" ]; then
    SC=0
    if [ "$U" != 0 ] && [ "$SU" = 1 ] && command -v sudo >/dev/null && sudo -n true; then SC=1; fi
  fi
  [ "$SC" = 1 ]
}
tl() {
  { r=$( { { "$@" 3>&- 4>&-; echo $? >&3; } | tail -c "$N" >&4; } 3>&1 ); } 4>&1
  return "${r:-1}"
}
f() {
  if [ ! -e "$2" ]; then b "$1" missing; e "$1" 0
  elif [ -r "$2" ]; then b "$1" ok; cat "$2"; e "$1" $?
  elif sx; then b "$1" ok - sudo; sudo -n cat "$2"; e "$1" $?
  else b "$1" denied; e "$1" 0
  fi
}
kv() {
  grep -H '' "$@" | sed 's|^[^:]*/\([^/:]*\):|\1=|'
}

b uname ok; uname -r; r=$?; getconf PAGESIZE 2>/dev/null; grep '^btime ' /proc/stat 2>/dev/null
e uname $r
f meminfo /proc/meminfo
f buddyinfo /proc/buddyinfo
f vmstat /proc/vmstat
f psi_memory /proc/pressure/memory
if [ -d /proc/sys/vm ]; then b sysvm ok; kv /proc/sys/vm/*; e sysvm 0
else b sysvm missing; e sysvm 0; fi
X=/sys/devices/system/xen_memory/xen_memory0
if [ -d "$X" ]; then b balloon ok; kv "$X/target_kb" "$X/info/current_kb"; e balloon 0
else b balloon missing; e balloon 0; fi
if command -v ps >/dev/null; then
  b ps ok
  # procps first (sorted by RSS). busybox ps knows neither -e nor --sort, and lists by
  # pid (kernel threads first): keep its whole list, the analysis sorts it by RSS.
  P=$($T ps -eo pid,comm,rss,vsz --sort=-rss | head -n 30)
  if [ -z "$P" ]; then P=$($T ps -o pid,comm,rss,vsz | head -n 2000); fi
  if [ -n "$P" ]; then printf '%s\n' "$P"; e ps 0; else e ps 1; fi
else b ps missing; e ps 0; fi
f slabinfo /proc/slabinfo

R=0
if [ -r /proc/sys/kernel/dmesg_restrict ]; then read -r R </proc/sys/kernel/dmesg_restrict; fi
K=/var/log/kern.log
# Each source is tried only when the one before gave nothing: an empty or failing
# dmesg (cleared ring buffer, container, restricted) falls through to the journal,
# then kern.log. The header comes first, so a hang is blamed on the kernel log.
D=
if command -v dmesg >/dev/null && { [ "$U" = 0 ] || [ "$R" = 0 ]; }; then D=dmesg
elif command -v dmesg >/dev/null && sx; then D=sudo; fi
G=1
if [ -n "$D" ]; then
  if [ "$D" = sudo ]; then b kernlog ok dmesg sudo; set -- sudo -n dmesg
  else b kernlog ok dmesg; set -- dmesg; fi
  if [ -n "$($T "$@" | head -c 64)" ]; then tl $T "$@"; G=$?; e kernlog $G
  else e kernlog 0; fi
fi
if [ "$G" != 0 ]; then
  if command -v journalctl >/dev/null \
      && [ -n "$($T journalctl -k -b -q -n 1 --no-pager -o cat)" ]; then
    b kernlog ok journalctl; tl $T journalctl -k -b -q --no-pager -o short-iso; e kernlog $?
  elif [ -f "$K" ] && [ -r "$K" ] && [ -s "$K" ]; then
    b kernlog ok kern.log; tail -c "$N" "$K"; e kernlog $?
  elif [ -f "$K" ] && [ ! -r "$K" ] && sx; then
    b kernlog ok kern.log sudo; sudo -n tail -c "$N" "$K"; e kernlog $?
  elif [ -n "$D" ]; then
    :
  elif command -v dmesg >/dev/null || [ -e "$K" ]; then
    b kernlog denied; e kernlog 0
  else
    b kernlog missing; e kernlog 0
  fi
fi
printf '\n%s:Z\n' "$M"
}
main </dev/null 2>/dev/null
"""
