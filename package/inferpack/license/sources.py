"""Raw hardware identifiers, read below a filesystem root (``/`` on a host, a fake tree in tests).

Every reader returns raw values or nothing; none of them stores or logs what it read
(``fingerprint.py`` hashes the values at once). Only world-readable files count: the operator's
``fingerprint`` (run as root), the process runtime and the container's unprivileged service
user must all see the same components, so a root-only DMI serial or SCSI VPD page is absent
everywhere rather than present in the request and missing where the license is checked.
Unreadable files and vendor placeholders ("To be filled by O.E.M.", all-zero UUIDs) read as
absent: a component a machine does not really have must never match another machine's identical placeholder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

GpuSource = Callable[[], list[str]]
"""Returns the NVIDIA GPU UUIDs (``GPU-...``) visible here; tests inject their own."""

_PLACEHOLDERS = frozenset(
    {
        "", "none", "n/a", "na", "unknown", "uninitialized", "not specified", "not applicable",
        "not available", "to be filled by o.e.m.", "default string", "system serial number",
        "base board serial number", "chassis serial number", "0123456789", "123456789",
        "03000200-0400-0500-0006-000700080009",
    }
)  # fmt: skip

# Interfaces that are virtual by name even where sysfs would not tell (bridges, tunnels, CNI).
_VIRTUAL_NIC_PREFIXES = (
    "lo", "docker", "veth", "br-", "virbr", "vnet", "tap", "tun", "cni", "flannel", "cali",
    "vxlan", "wg", "ifb", "dummy",
)  # fmt: skip

_MAX_SLAVE_DEPTH = 8  # dm on md on partitions: a few levels; the bound only stops a loop
_NVSMI_UUID = re.compile(r"\(UUID: (GPU-[0-9A-Fa-f-]+)\)")
_NVSMI_TIMEOUT_S = 10


def _world_readable(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _read_text(path: Path) -> str | None:
    if not _world_readable(path):  # absent, or root-only (DMI serials are often mode 0400)
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _meaningful(value: str | None) -> str | None:
    """``value`` stripped, or None for an empty, placeholder or one-character-repeated value."""
    if value is None:
        return None
    value = value.strip()
    significant = value.replace("-", "").replace(":", "").replace(" ", "").lower()
    if value.lower() in _PLACEHOLDERS or len(set(significant)) <= 1:
        return None
    return value


def machine_id(root: Path) -> str | None:
    """systemd's ``/etc/machine-id`` (D-Bus's copy on older systems)."""
    for rel in ("etc/machine-id", "var/lib/dbus/machine-id"):
        if value := _meaningful(_read_text(root / rel)):
            return value.lower()
    return None


def dmi(root: Path, field: str) -> str | None:
    """A DMI/SMBIOS field such as ``product_uuid`` or ``board_serial``; None unless readable."""
    return _meaningful(_read_text(root / "sys/class/dmi/id" / field))


def _is_universal_unicast(mac: str) -> bool:
    try:
        octets = bytes(int(part, 16) for part in mac.split(":"))
    except ValueError:
        return False
    # Bit 0x02: locally administered (randomised, VM- or container-assigned); 0x01: multicast.
    return len(octets) == 6 and any(octets) and not octets[0] & 0x03


def physical_nic_macs(root: Path) -> list[str]:
    """Burned-in MACs of hardware NICs, sorted: what a container or a MAC change cannot fake."""
    net = root / "sys/class/net"
    try:
        names = sorted(os.listdir(net))
    except OSError:
        return []
    macs: set[str] = set()
    for name in names:
        iface = net / name
        # Only interfaces backed by a bus device have a `device` link; veth, bridges and bonds do not.
        if name.startswith(_VIRTUAL_NIC_PREFIXES) or not os.path.lexists(iface / "device"):
            continue
        # A bonding slave shows the bond's MAC; its own burned-in one is kept aside.
        mac = _read_text(iface / "bonding_slave/perm_hwaddr")
        if mac is None:
            # 1 = random, 3 = set from userspace (e.g. `ip link set address`): not the hardware's.
            if _read_text(iface / "addr_assign_type") in ("1", "3"):
                continue
            mac = _read_text(iface / "address")
        if mac and _is_universal_unicast(mac):
            macs.add(mac.lower())
    return sorted(macs)


def _root_mount(root: Path) -> tuple[str, str] | None:
    """(major:minor, source) of the filesystem mounted on ``/``, from ``mountinfo``."""
    text = _read_text(root / "proc/self/mountinfo")
    found = None
    for line in (text or "").splitlines():
        # id parent major:minor root mount-point options [optional...] - fstype source super-options
        fields, _, tail = line.partition(" - ")
        parts, tail_parts = fields.split(), tail.split()
        if len(parts) >= 5 and parts[4] == "/" and len(tail_parts) >= 2:
            found = (parts[2], tail_parts[1])  # the last mount on / is the one in effect
    return found


def _block_devices(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Maps of major:minor -> disk and device name -> disk, for every disk and partition."""
    by_number: dict[str, str] = {}
    by_name: dict[str, str] = {}
    block = root / "sys/block"
    try:
        disks = sorted(os.listdir(block))
    except OSError:
        return by_number, by_name
    for disk in disks:
        by_name[disk] = disk
        if number := _read_text(block / disk / "dev"):
            by_number[number] = disk
        try:
            children = os.listdir(block / disk)
        except OSError:
            continue
        for child in children:
            # Partitions are the only children with a `partition` file.
            if (block / disk / child / "partition").is_file():
                by_name[child] = disk
                if number := _read_text(block / disk / child / "dev"):
                    by_number[number] = disk
    return by_number, by_name


def root_disk(root: Path) -> str | None:
    """The physical disk under ``/``, through partitions, LVM/LUKS (dm-*) and md RAID."""
    mount = _root_mount(root)
    if mount is None:
        return None
    number, source = mount
    by_number, by_name = _block_devices(root)
    # btrfs reports an anonymous 0:N device number; its mount source still names the partition.
    disk = by_number.get(number) or by_name.get(os.path.basename(source))
    for _ in range(_MAX_SLAVE_DEPTH):
        if disk is None:
            return None
        try:
            slaves = sorted(os.listdir(root / "sys/block" / disk / "slaves"))
        except OSError:
            slaves = []
        if not slaves:
            return disk
        disk = by_name.get(slaves[0])
    return None


def _vpd_serial(path: Path) -> str | None:
    """The serial in a SCSI VPD page 0x80 (unit serial number): 4-byte header, then ASCII."""
    if not _world_readable(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < 4 or data[1] != 0x80:
        return None
    length = int.from_bytes(data[2:4], "big")
    return _meaningful(data[4 : 4 + length].decode("ascii", errors="replace"))


def _by_id_name(root: Path, disk: str) -> str | None:
    """udev's ``/dev/disk/by-id`` name for ``disk`` (it embeds model and serial)."""
    by_id = root / "dev/disk/by-id"
    try:
        names = sorted(os.listdir(by_id))
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(by_id / name)
        except OSError:
            continue
        if "-part" not in name and os.path.basename(target) == disk:
            return name
    return None


def disk_serial(root: Path, disk: str) -> str | None:
    """A disk's serial: sysfs (NVMe, virtio, SCSI VPD), then its WWID, then its by-id name."""
    base = root / "sys/block" / disk
    for rel in ("device/serial", "serial"):
        if value := _meaningful(_read_text(base / rel)):
            return value
    if value := _vpd_serial(base / "device/vpd_pg80"):
        return value
    for rel in ("device/wwid", "wwid"):
        if value := _meaningful(_read_text(base / rel)):
            return value
    return _by_id_name(root, disk)


def root_disk_serial(root: Path) -> str | None:
    disk = root_disk(root)
    return disk_serial(root, disk) if disk else None


def cpu_model(root: Path) -> str | None:
    """The first ``model name`` in ``/proc/cpuinfo``, whitespace collapsed."""
    for line in (_read_text(root / "proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return _meaningful(" ".join(value.split()))
    return None


def _nvml_uuids() -> list[str] | None:
    """GPU UUIDs from NVML, or None when NVML cannot answer (no binding, no driver)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        raw = [pynvml.nvmlDeviceGetUUID(handle) for handle in handles]
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
    # Older bindings return bytes.
    return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]


def _nvidia_smi_uuids() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=_NVSMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    # MIG slices are listed too, as MIG-...; the card's own GPU-... UUID is what is licensed.
    return _NVSMI_UUID.findall(done.stdout) if done.returncode == 0 else []


def nvidia_gpu_uuids() -> list[str]:
    """NVIDIA GPU UUIDs via NVML when importable, else ``nvidia-smi -L``; [] when neither answers."""
    uuids = _nvml_uuids()
    return uuids if uuids is not None else _nvidia_smi_uuids()
