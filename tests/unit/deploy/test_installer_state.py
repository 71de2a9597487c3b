"""The installer's on-disk state: the work-root lock, the journal, versions, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.onnx_models import colour_classifier

from inferpack.deploy.journal import InstallerBusy, Journal, finish, read_journal, record, work_root_lock
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.settings import ServiceSettings, load_settings, save_settings
from inferpack.deploy.versions import (
    VersionConflict,
    current_version,
    install_version,
    installed_versions,
    slot_for,
    switch_current,
)


@pytest.fixture
def layout(tmp_path: Path) -> ServiceLayout:
    return ServiceLayout(tmp_path / "work", "demo")


def test_lock_refuses_a_second_installer_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from inferpack.deploy.journal import work_root_lock
                with work_root_lock(Path({str(tmp_path)!r})):
                    print("held", flush=True)
                    time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InstallerBusy, match=f"pid {holder.pid}"), work_root_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.communicate()
    with work_root_lock(tmp_path):  # a killed holder leaves no stale lock behind
        pass


def test_journal_round_trip_and_finish(layout: ServiceLayout) -> None:
    assert read_journal(layout) is None
    journal = record(layout, Journal.begin("update", "2.0", "1.0"), "gate")
    assert read_journal(layout) == journal
    assert journal.step == "gate" and journal.pid == os.getpid()
    finish(layout)
    assert read_journal(layout) is None


def test_versions_side_by_side_and_current_pointer(layout: ServiceLayout, tmp_path: Path) -> None:
    v1 = colour_classifier(tmp_path / "m1")
    v2 = colour_classifier(tmp_path / "m2", labels=["blue", "green", "red"])
    install_version(layout, "1.0", v1)
    install_version(layout, "1.0", v1)  # idempotent for the same content
    install_version(layout, "2.0", v2)
    assert installed_versions(layout) == ["1.0", "2.0"]
    assert current_version(layout) is None
    switch_current(layout, "1.0")
    assert current_version(layout) == "1.0"
    assert json.loads((layout.current / "model.json").read_text())["labels"][0] == "red"
    switch_current(layout, "2.0")
    assert current_version(layout) == "2.0"
    assert not (layout.home / ".current.tmp").exists()
    with pytest.raises(VersionConflict, match="different content"):
        install_version(layout, "1.0", v2)
    with pytest.raises(VersionConflict, match="not installed"):
        switch_current(layout, "3.0")


def test_broken_bundle_is_not_installed(layout: ServiceLayout, tmp_path: Path) -> None:
    model = colour_classifier(tmp_path / "m")
    (model / "model.json").write_text("{")
    with pytest.raises(Exception, match="not valid JSON"):
        install_version(layout, "1.0", model)
    assert installed_versions(layout) == []


def test_slot_names_are_container_safe() -> None:
    assert slot_for("1.2.0") == "v1.2.0"
    assert slot_for("2024/11 rc+1") == "v2024-11-rc-1"


def test_settings_history_and_previous_version(layout: ServiceLayout) -> None:
    assert load_settings(layout) is None
    settings = ServiceSettings(name="demo", runtime="process", port=8080)
    for version in ("1.0", "2.0", "1.0", "3.0"):
        settings = settings.activated(version)
    save_settings(layout, settings)
    loaded = load_settings(layout)
    assert loaded == settings
    assert loaded.current_version == "3.0"
    assert loaded.previous_version() == "1.0"
    assert ServiceSettings(name="x", runtime="docker", port=1).activated("1").previous_version() is None
