"""A fake host (sysfs/procfs-like files under a folder) and a hand-built license block."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
"""Licenses in these tests are issued at T0 and checked at times relative to it."""

MACHINE_ID = "3d1219c7c4c5404aaa1f6d2a48adfda4"
PRODUCT_UUID = "4C4C4544-0042-3510-8051-B4C04F4D3732"
BOARD_SERIAL = ".7B5QM32.CN1296371S00QK."
DISK_SERIAL = "S4EWNX0R123456"
CPU_MODEL = "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"
NIC_MACS = ["3c:ec:ef:12:34:56", "3c:ec:ef:12:34:57"]
GPU_UUIDS = ["GPU-5b7e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"]


class FakeHost:
    """Writes the files the fingerprint readers look for, below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def link(self, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)  # dangling, like sysfs links into /sys/devices

    def nic(self, name: str, mac: str, *, physical: bool = True, assign_type: str = "0") -> None:
        self.write(f"sys/class/net/{name}/address", mac + "\n")
        self.write(f"sys/class/net/{name}/addr_assign_type", assign_type + "\n")
        if physical:
            self.link(f"sys/class/net/{name}/device", "../../../devices/pci0000:00/0000:00:1f.6")

    def root_mount(self, devnum: str, source: str, fstype: str = "ext4") -> None:
        self.write(
            "proc/self/mountinfo",
            "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
            f"27 1 {devnum} / / rw,relatime shared:1 - {fstype} {source} rw\n"
            "28 27 0:25 / /boot/efi rw - vfat /dev/nvme0n1p1 rw\n",
        )

    def disk(self, name: str, devnum: str, partitions: dict[str, str] | None = None) -> None:
        self.write(f"sys/block/{name}/dev", devnum + "\n")
        self.write(f"sys/block/{name}/queue/rotational", "0\n")  # a child that is not a partition
        for part, part_devnum in (partitions or {}).items():
            self.write(f"sys/block/{name}/{part}/dev", part_devnum + "\n")
            self.write(f"sys/block/{name}/{part}/partition", part[-1] + "\n")


def build_host(root: Path) -> FakeHost:
    """A bare-metal GPU server with every kind of component and the usual virtual noise."""
    host = FakeHost(root)
    host.write("etc/machine-id", MACHINE_ID + "\n")
    host.write("sys/class/dmi/id/product_uuid", PRODUCT_UUID + "\n")
    host.write("sys/class/dmi/id/board_serial", BOARD_SERIAL + "\n")
    host.write("sys/class/dmi/id/chassis_serial", "To be filled by O.E.M.\n")
    host.nic("eno1", NIC_MACS[0])
    host.nic("enp2s0", NIC_MACS[1])
    host.nic("lo", "00:00:00:00:00:00", physical=False)
    host.nic("docker0", "02:42:19:4e:24:96", physical=False, assign_type="3")
    host.nic("veth1a2b3c", "9a:1b:2c:3d:4e:5f", physical=False, assign_type="1")
    host.nic("br-0123456789ab", "02:42:aa:bb:cc:dd", physical=False)
    host.nic("wlp3s0", "a6:11:22:33:44:55")  # physical, but a randomised (locally administered) MAC
    host.nic("enp5s0", "3c:ec:ef:99:99:99", assign_type="3")  # set from userspace: not burned in
    host.disk("nvme0n1", "259:0", {"nvme0n1p1": "259:1", "nvme0n1p2": "259:2"})
    host.write("sys/block/nvme0n1/device/serial", DISK_SERIAL + "   \n")
    host.root_mount("259:2", "/dev/nvme0n1p2")
    cpuinfo = f"processor\t: 0\nmodel name\t: {CPU_MODEL}\n\nprocessor\t: 1\nmodel name\t: y\n"
    host.write("proc/cpuinfo", cpuinfo)
    return host


def armored(payload: bytes, signature: bytes) -> str:
    """A license block built by hand, exactly as the documented format describes it."""
    return (
        "-----BEGIN INFERPACK LICENSE-----\n"
        f"{base64.b64encode(payload).decode()}\n"
        "-----SIGNATURE-----\n"
        f"{base64.b64encode(signature).decode()}\n"
        "-----END INFERPACK LICENSE-----\n"
    )
