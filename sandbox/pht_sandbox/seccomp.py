"""The seccomp profile a train container runs under (the OCI runtime spec's ``linux.seccomp``).

Choice: **allow by default, refuse a fixed list** with ``EPERM``. A deny-by-default allowlist
(what container engines ship) must track every system call Python, numpy and their libraries
may make on each kernel and libc; a train that trips over a missing entry fails in ways a
researcher cannot debug. The container already runs without capabilities, with
``noNewPrivileges``, in its own namespaces, so most calls below would fail anyway; the profile
is the second wall for what an unprivileged process may still reach in the kernel:

* new namespaces and joining others (``unshare``, ``setns``, ``clone``/``clone3`` with any
  ``CLONE_NEW*`` flag: ``clone3`` answers ``ENOSYS`` so that libc falls back to ``clone``,
  whose flags a filter can read), ``mount`` and the new mount API, ``pivot_root``, ``chroot``;
* reading or steering other processes (``ptrace``, ``process_vm_readv``/``writev``,
  ``kcmp``, ``pidfd_getfd``), the kernel's attack surface (``bpf``, ``perf_event_open``,
  ``userfaultfd``, ``io_uring_*``, ``keyctl``/``add_key``/``request_key``), file handles
  (``open_by_handle_at``), and everything that changes the machine (modules, ``kexec``,
  ``reboot``, swap, clocks, accounting, quotas, ``syslog``).

Python, the SDK and numpy need none of these (the tests run the example trains under it).
"""

from __future__ import annotations

from typing import Final

from pht_contract.objects import Obj

#: Refused outright with EPERM.
REFUSED: Final = (
    "unshare",
    "setns",
    "mount",
    "umount",
    "umount2",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "uselib",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "vhangup",
    "personality",
)
#: clone(2) flags that create namespaces.
NAMESPACE_FLAGS: Final = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
EPERM: Final = 1
ENOSYS: Final = 38


def default_profile() -> Obj:
    """The profile as ``linux.seccomp`` of a runc ``config.json``."""
    syscalls: list[Obj] = [
        {"names": list(REFUSED), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    for flag in NAMESPACE_FLAGS:
        syscalls.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        )
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }
