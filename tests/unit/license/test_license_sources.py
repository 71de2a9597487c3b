"""Every raw reader against a fake root: what counts, what is skipped, what reads as absent."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from inferpack.license import sources

from ._fakes import BOARD_SERIAL, CPU_MODEL, DISK_SERIAL, MACHINE_ID, NIC_MACS, PRODUCT_UUID, FakeHost


def test_reads_every_component_of_the_fake_host(host: FakeHost) -> None:
    assert sources.machine_id(host.root) == MACHINE_ID
    assert sources.dmi(host.root, "product_uuid") == PRODUCT_UUID
    assert sources.dmi(host.root, "board_serial") == BOARD_SERIAL
    assert sources.root_disk(host.root) == "nvme0n1"
    assert sources.root_disk_serial(host.root) == DISK_SERIAL
    assert sources.cpu_model(host.root) == CPU_MODEL


def test_empty_root_has_no_components(tmp_path: Path) -> None:
    assert sources.machine_id(tmp_path) is None
    assert sources.dmi(tmp_path, "product_uuid") is None
    assert sources.physical_nic_macs(tmp_path) == []
    assert sources.root_disk_serial(tmp_path) is None
    assert sources.cpu_model(tmp_path) is None


@pytest.mark.parametrize(
    "value",
    ["", "To be filled by O.E.M.", "Default string", "00000000-0000-0000-0000-000000000000", "FFFFFFFF", "0"],
)
def test_placeholders_read_as_absent(host: FakeHost, value: str) -> None:
    host.write("sys/class/dmi/id/board_serial", value + "\n")
    assert sources.dmi(host.root, "board_serial") is None


def test_machine_id_falls_back_to_dbus_and_ignores_uninitialized(host: FakeHost) -> None:
    host.write("etc/machine-id", "uninitialized\n")
    assert sources.machine_id(host.root) is None
    host.write("var/lib/dbus/machine-id", "ABCDEF0123456789abcdef0123456789\n")
    assert sources.machine_id(host.root) == "abcdef0123456789abcdef0123456789"


def test_only_burned_in_macs_of_physical_nics_count(host: FakeHost) -> None:
    # Skipped: lo, docker0, veth*, br-* (virtual), wlp3s0 (randomised), enp5s0 (MAC set by hand).
    assert sources.physical_nic_macs(host.root) == NIC_MACS


def test_virtual_names_are_skipped_even_with_a_device_link(host: FakeHost) -> None:
    for name in ("docker1", "veth9", "br-x", "virbr0"):
        host.nic(name, "00:11:22:33:44:55")
    assert sources.physical_nic_macs(host.root) == NIC_MACS


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "01:00:5e:00:00:01", "not-a-mac", "00:11:22"])
def test_zero_multicast_and_garbage_macs_are_skipped(host: FakeHost, mac: str) -> None:
    host.nic("eno9", mac)
    assert sources.physical_nic_macs(host.root) == NIC_MACS


def test_a_bond_slave_counts_with_its_own_burned_in_mac(host: FakeHost) -> None:
    host.nic("eno3", NIC_MACS[0], assign_type="3")  # shows the bond's MAC
    host.write("sys/class/net/eno3/bonding_slave/perm_hwaddr", "3C:EC:EF:00:00:03\n")
    assert sources.physical_nic_macs(host.root) == ["3c:ec:ef:00:00:03", *NIC_MACS]


def test_root_disk_through_lvm_on_a_partition(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.disk("sda", "8:0", {"sda1": "8:1", "sda2": "8:2"})
    host.disk("dm-0", "253:0")
    host.write("sys/block/dm-0/slaves/sda2/dev", "8:2\n")
    host.root_mount("253:0", "/dev/mapper/vg-root")
    host.write("sys/block/sda/device/vpd_pg80", b"\x00\x80\x00\x0e  WD-WCC4N0123")
    assert sources.root_disk(tmp_path) == "sda"
    assert sources.root_disk_serial(tmp_path) == "WD-WCC4N0123"


def test_btrfs_root_is_found_by_its_mount_source(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.disk("nvme1n1", "259:4", {"nvme1n1p3": "259:7"})
    host.root_mount("0:31", "/dev/nvme1n1p3", fstype="btrfs")  # btrfs: anonymous device number
    host.write("sys/block/nvme1n1/wwid", "eui.0025388b91b2c0a1\n")
    assert sources.root_disk_serial(tmp_path) == "eui.0025388b91b2c0a1"


def test_virtio_disk_serial(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.disk("vda", "254:0")
    host.root_mount("254:0", "/dev/vda")
    host.write("sys/block/vda/serial", "vol-0a1b2c3d\n")
    assert sources.root_disk_serial(tmp_path) == "vol-0a1b2c3d"


def test_disk_serial_from_by_id_when_sysfs_has_none(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.disk("sdb", "8:16", {"sdb1": "8:17"})
    host.root_mount("8:17", "/dev/sdb1")
    host.link("dev/disk/by-id/ata-Samsung_SSD_860_S3Z9NB0K-part1", "../../sdb1")
    host.link("dev/disk/by-id/ata-Samsung_SSD_860_S3Z9NB0K", "../../sdb")
    host.link("dev/disk/by-id/ata-Other_Disk_X1", "../../sda")
    assert sources.root_disk_serial(tmp_path) == "ata-Samsung_SSD_860_S3Z9NB0K"


def test_no_root_disk_in_a_container_overlay(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.root_mount("0:52", "overlay", fstype="overlay")
    assert sources.root_disk_serial(tmp_path) is None


def test_a_slave_loop_ends_without_a_disk(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    for name, other in (("dm-0", "dm-1"), ("dm-1", "dm-0")):
        host.disk(name, f"253:{name[-1]}")
        host.write(f"sys/block/{name}/slaves/{other}/dev", "x\n")
    host.root_mount("253:0", "/dev/dm-0")
    assert sources.root_disk(tmp_path) is None


class _FakeNVML(types.ModuleType):
    class NVMLError(Exception):
        pass

    def __init__(self, uuids: list[str | bytes], fail_init: bool = False) -> None:
        super().__init__("pynvml")
        self.uuids, self.fail_init, self.shut_down = uuids, fail_init, False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str | bytes:
        return self.uuids[handle]

    def nvmlShutdown(self) -> None:
        self.shut_down = True


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `nvidia-smi` first on PATH; write its output to the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    output = tmp_path / "nvidia-smi.out"
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\n[ "$1" = -L ] && cat {output} && exit "$(cat {output}.rc 2>/dev/null || echo 0)"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return output


def test_gpu_uuids_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _FakeNVML(["GPU-aaaa-1111", b"GPU-bbbb-2222"])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert sources.nvidia_gpu_uuids() == ["GPU-aaaa-1111", "GPU-bbbb-2222"]
    assert nvml.shut_down


def test_gpu_uuids_from_nvidia_smi_when_nvml_has_no_driver(
    monkeypatch: pytest.MonkeyPatch, fake_nvidia_smi: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNVML([], fail_init=True))
    fake_nvidia_smi.write_text(
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5b7e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b)\n"
        "  MIG 1g.10gb     Device  0: (UUID: MIG-7f1e2d3c-0000-1111-2222-333344445555)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-1111-2222-3333-444455556666)\n"
    )
    assert sources.nvidia_gpu_uuids() == [
        "GPU-5b7e2f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "GPU-00000000-1111-2222-3333-444455556666",
    ]


def test_failing_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch, fake_nvidia_smi: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not importable
    fake_nvidia_smi.write_text("GPU 0: X (UUID: GPU-1234)\n")
    Path(f"{fake_nvidia_smi}.rc").write_text("9")
    assert sources.nvidia_gpu_uuids() == []


def test_no_nvml_and_no_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sources.nvidia_gpu_uuids() == []
