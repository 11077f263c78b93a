"""Stand-in Dom0s for the Ansible tests: real sshd hosts with a fake `xl` and their own guests.

Each Dom0 is a stand-in like the guests (`Fleet`: OpenSSH's sshd started with
`setsid unshare --mount --propagation private`), with more bind mounts that
are private to it:

    /usr/sbin/xl   a wrapper running tests/fake_xl/xl on this Dom0's recordings
                   (`xl list`, `xl list -l`, `xl info` listing its guests)
    /etc/xen       its own cfg files, one per guest
    /opt           empty: the role's virtualenv (/opt/xenaudit) lands here
    /srv           empty: the tests point the role's config and state folders here

Its guests are stand-in guests too (one `Fleet` for all Dom0s' guests, named
"<dom0>-<guest>"), reached from the Dom0 over loopback with their own client
key. A Dom0 may be left unstarted: its port is then closed, as for a machine
that is down. `ansible-playbook` runs on this machine, as the controller.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.localssh import free_port
from tests.standin.fleet import Fleet, GuestSpec

REPO = Path(__file__).resolve().parent.parent.parent
FAKE_XL = REPO / "tests" / "fake_xl" / "xl"
PLAYBOOKS = REPO / "contrib" / "ansible"
XL = "/usr/sbin/xl"


@dataclass(frozen=True)
class GuestPlan:
    name: str
    memory_mib: int = 512
    spec: GuestSpec | None = None
    #: False: xl lists it, but nothing answers on its SSH port.
    up: bool = True


@dataclass(frozen=True)
class Dom0Plan:
    name: str
    guests: tuple[GuestPlan, ...] = ()
    #: False: in the Ansible inventory, but nothing answers on its port.
    reachable: bool = True


@dataclass
class Dom0:
    plan: Dom0Plan
    #: Its private folders, as seen from outside (e.g. root / "srv" is its /srv).
    root: Path
    port: int

    @property
    def name(self) -> str:
        return self.plan.name

    def path(self, inside: str) -> Path:
        """Where a path under one of the Dom0's private mounts is, seen from outside."""
        for mount, folder in (("/srv", "srv"), ("/opt", "opt"), ("/etc/xen", "etc-xen")):
            if inside == mount or inside.startswith(mount + "/"):
                return self.root / folder / inside[len(mount) :].lstrip("/")
        raise ValueError(f"{inside} is not under a private mount of {self.name}")


def xl_recordings(
    folder: Path,
    host: str,
    guests: Sequence[tuple[str, int, int]],
    *,
    total_mib: int = 16383,
    free_mib: int = 4095,
    dom0_mib: int = 2048,
) -> Path:
    """What `xl list`, `xl list -l` and `xl info` print on a Dom0 with these guests."""
    folder.mkdir(parents=True)
    rows = [
        "Name                                        ID   Mem VCPUs\tState\tTime(s)",
        f"{'Domain-0':<40}{0:>6}{dom0_mib:>6}{2:>6}     r-----    1201.3",
    ]
    details = []
    for name, domid, memory_mib in guests:
        rows.append(f"{name:<40}{domid:>6}{memory_mib:>6}{1:>6}     -b----      12.7")
        details.append(
            {
                "domid": domid,
                "config": {
                    "c_info": {
                        "type": "pv",
                        "name": name,
                        "uuid": f"00000000-0000-4000-8000-{domid:012d}",
                    },
                    "b_info": {
                        "max_vcpus": 1,
                        "avail_vcpus": [0],
                        "max_memkb": memory_mib * 1024,
                        "target_memkb": memory_mib * 1024,
                        "type.pv": {"bootloader": "pygrub"},
                    },
                },
            }
        )
    (folder / "list.out").write_text("\n".join(rows) + "\n")
    (folder / "list_l.out").write_text(json.dumps(details, indent=4) + "\n")
    (folder / "info.out").write_text(
        f"host                   : {host}\n"
        f"total_memory           : {total_mib}\n"
        f"free_memory            : {free_mib}\n"
        "outstanding_claims     : 0\n"
        "free_cpus              : 0\n"
        "xen_major              : 4\n"
        "xen_minor              : 17\n"
        "xen_extra              : .3\n"
        "xen_version            : 4.17.3\n"
        f"xen_commandline        : dom0_mem={dom0_mib}M,max:{dom0_mib}M console=hvc0\n"
    )
    return folder


def cfg_text(name: str, memory_mib: int) -> str:
    return (
        f'# {name}\nname = "{name}"\nbootloader = "pygrub"\n\nmemory = {memory_mib}\n'
        f"vcpus = 1\ndisk = [ 'phy:/dev/vg/{name},xvda,w' ]\n"
    )


@dataclass
class StandinDom0s:
    """Running stand-in Dom0s with their guests, and the Ansible inventory that reaches them."""

    work: Path
    dom0s: list[Dom0]
    dom0_fleet: Fleet
    guest_fleet: Fleet
    guest_ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, plans: Sequence[Dom0Plan], work: Path) -> StandinDom0s:
        work.mkdir(parents=True, exist_ok=True)
        guest_specs: list[GuestSpec] = []
        for plan in plans:
            for guest in plan.guests:
                if guest.up:
                    guest_specs.append(guest.spec or GuestSpec(guest.name))
        guest_fleet = Fleet.start(guest_specs, root=work / "guests")
        try:
            dom0s: list[Dom0] = []
            specs: list[GuestSpec] = []
            ports = {g.name: g.port for g in guest_fleet.guests}
            for plan in plans:
                dom0 = Dom0(plan, work / "dom0s" / plan.name, port=0)
                for guest in plan.guests:
                    ports.setdefault(guest.name, free_port())
                cls._private_folders(dom0)
                dom0s.append(dom0)
                if plan.reachable:
                    binds = {
                        "/opt": str(dom0.root / "opt"),
                        "/srv": str(dom0.root / "srv"),
                        "/etc/xen": str(dom0.root / "etc-xen"),
                        XL: str(dom0.root / "xl"),
                    }
                    specs.append(GuestSpec(plan.name, binds=binds, kernlog="", balloon=None))
            dom0_fleet = Fleet.start(specs, root=work / "dom0-sshd")
        except BaseException:
            guest_fleet.stop()
            raise
        for dom0 in dom0s:
            dom0.port = dom0_fleet.guest(dom0.name).port if dom0.plan.reachable else free_port()
        return cls(work, dom0s, dom0_fleet, guest_fleet, ports)

    @staticmethod
    def _private_folders(dom0: Dom0) -> None:
        for folder in ("opt", "srv", "etc-xen", "srv/systemd", "srv/node-exporter"):
            (dom0.root / folder).mkdir(parents=True, mode=0o755)
        guests = [(g.name, 10 + i, g.memory_mib) for i, g in enumerate(dom0.plan.guests)]
        recordings = xl_recordings(dom0.root / "xl-recordings", dom0.name, guests)
        for name, _, memory in guests:
            (dom0.root / "etc-xen" / f"{name}.cfg").write_text(cfg_text(name, memory))
        wrapper = dom0.root / "xl"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"XENAUDIT_FAKE_XL_DIR='{recordings}' exec /usr/bin/python3 '{FAKE_XL}' \"$@\"\n"
        )
        wrapper.chmod(0o755)

    def stop(self) -> None:
        self.dom0_fleet.stop()
        self.guest_fleet.stop()

    def __enter__(self) -> StandinDom0s:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def dom0(self, name: str) -> Dom0:
        return next(d for d in self.dom0s if d.name == name)

    # --- Ansible -----------------------------------------------------------------

    def inventory(
        self, path: Path, role_vars: Mapping[str, Any], controller_vars: Mapping[str, Any]
    ) -> Path:
        """An Ansible inventory (YAML is JSON) with every Dom0 in group xenaudit_dom0s.

        `controller_vars` go to group `all`, where the merge on the controller sees them.
        """
        known_hosts = self.work / "dom0s_known_hosts"
        self.dom0_fleet.write_known_hosts(known_hosts)
        hosts = {}
        for dom0 in self.dom0s:
            domains = {
                g.name: {"ssh_host": "127.0.0.1", "ssh_port": self.guest_ports[g.name]}
                for g in dom0.plan.guests
            }
            hosts[dom0.name] = {
                "ansible_host": "127.0.0.1",
                "ansible_port": dom0.port,
                "xenaudit_domains": domains,
            }
        common = (
            f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=yes -o ConnectTimeout=5"
        )
        group_vars = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.dom0_fleet.client_key),
            "ansible_ssh_common_args": common,
            "ansible_python_interpreter": "/usr/bin/python3",
            # The stand-ins' sshd has no sftp subsystem: send files over the SSH session.
            "ansible_ssh_transfer_method": "piped",
            "ansible_pipelining": True,
            # Ansible's own scratch files stay in the Dom0's private /srv.
            "ansible_remote_tmp": "/srv/.ansible-tmp",
            "xenaudit_become": False,
            "xenaudit_system_packages": [],
            "xenaudit_link": "",
            "xenaudit_python": "/usr/bin/python3",
            "xenaudit_config_dir": "/srv/etc-xenaudit",
            "xenaudit_state_dir": "/srv/var-lib-xenaudit",
            "xenaudit_textfile_dir": "/srv/node-exporter",
            "xenaudit_systemd_dir": "/srv/systemd",
            "xenaudit_ssh": {
                "identity_file": str(self.guest_fleet.client_key),
                "known_hosts": str(self.guest_fleet.known_hosts),
                "ssh_config": "",
                "connect_timeout_s": 5.0,
                "guest_timeout_s": 30.0,
                "retries": 0,
            },
            **role_vars,
        }
        controller = {
            "xenaudit_merge_command": str(Path(sys.executable).parent / "xenaudit"),
            **controller_vars,
        }
        document = {
            "all": {
                "vars": controller,
                "children": {"xenaudit_dom0s": {"hosts": hosts, "vars": group_vars}},
            }
        }
        path.write_text(json.dumps(document, indent=2))
        return path


#: "changed: [dom0-a]", "ok: [dom0-b -> localhost]", "fatal: [dom0-d]: UNREACHABLE! ...".
_STATUS = re.compile(r"^(ok|changed|skipping|failed|fatal): \[([^\]]+?)(?: -> [^\]]+)?\]")


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counts per host: {"dom0-a": {"ok": 9, "changed": 2, ...}}."""
        counts: dict[str, dict[str, int]] = {}
        recap = self.output[self.output.rindex("PLAY RECAP") :]
        for line in recap.splitlines()[1:]:
            match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
            if match:
                pairs = re.findall(r"(\w+)=(\d+)", match.group(2))
                counts[match.group(1)] = {key: int(value) for key, value in pairs}
        return counts

    def task_results(self) -> dict[str, dict[str, str]]:
        """Per task name, the status line of each host ("ok", "changed", "skipping", ...)."""
        results: dict[str, dict[str, str]] = {}
        task = None
        for line in self.output.splitlines():
            header = re.match(r"^TASK \[(.*)\] \**$", line)
            if header:
                task = header.group(1)
                results.setdefault(task, {})
                continue
            status = _STATUS.match(line)
            if status and task is not None:
                results[task][status.group(2)] = status.group(1)
        return results


def ansible_env(home: Path) -> dict[str, str]:
    """Ansible's defaults, not whatever ~/.ansible.cfg or /etc/ansible this machine has."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        ANSIBLE_CONFIG=str(PLAYBOOKS / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / "cp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    return env


def ansible_playbook() -> str:
    found = Path(sys.executable).parent / "ansible-playbook"
    return str(found) if found.exists() else (shutil.which("ansible-playbook") or "")


def run_playbook(
    playbook: str, inventory: Path, home: Path, *args: str, timeout: float = 900
) -> PlaybookRun:
    command = [ansible_playbook(), "-i", str(inventory), str(PLAYBOOKS / playbook), *args]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env=ansible_env(home),
        cwd=str(PLAYBOOKS),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(done.returncode, done.stdout + done.stderr, time.perf_counter() - started)
