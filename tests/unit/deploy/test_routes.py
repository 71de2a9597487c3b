"""routes.json: atomic writes the front can read at any moment, and strict reading."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from inferpack.deploy.front import RoutesWatcher
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import (
    Backend,
    Routes,
    RoutesError,
    load_routes,
    read_routes,
    routes_path,
    write_routes,
)

OLD, NEW = Backend("1-0-0", 18080, "1.0.0"), Backend("2-0-0", 18081, "2.0.0")


@pytest.fixture
def layout(tmp_path: Path) -> ServiceLayout:
    return ServiceLayout(tmp_path, "demo")


def test_write_then_read_round_trips(layout: ServiceLayout) -> None:
    written = write_routes(layout, NEW, standby=(OLD,))
    assert routes_path(layout) == layout.home / "state" / "routes.json"
    assert read_routes(layout) == written == Routes(NEW, (OLD,), written.updated, str(layout.home))
    updated = datetime.fromisoformat(written.updated)
    assert updated.utcoffset() == timedelta(0)
    assert json.loads(routes_path(layout).read_text())["active"] == {
        "slot": "2-0-0",
        "port": 18081,
        "version": "2.0.0",
    }


def test_the_file_is_readable_by_the_front_user_and_no_temp_file_is_left(layout: ServiceLayout) -> None:
    write_routes(layout, OLD)
    write_routes(layout, NEW)
    assert stat.S_IMODE(routes_path(layout).stat().st_mode) == 0o644
    assert [p.name for p in routes_path(layout).parent.iterdir()] == ["routes.json"]


def test_no_file_yet_reads_as_none(layout: ServiceLayout) -> None:
    assert read_routes(layout) is None


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"standby": []}',
        '{"active": {"slot": "a", "port": "80", "version": "1"}}',
        '{"active": {"slot": "a", "port": 0, "version": "1"}}',
        '{"active": {"slot": "a", "port": true, "version": "1"}}',
        '{"active": {"slot": "a", "port": 80, "version": 1}}',
        '{"active": {"slot": "a", "port": 80, "version": "1"}, "standby": {}}',
    ],
)
def test_malformed_routes_are_refused_with_a_reason(tmp_path: Path, text: str) -> None:
    path = tmp_path / "routes.json"
    path.write_text(text)
    with pytest.raises(RoutesError):
        load_routes(path)


def test_the_front_tries_the_active_backend_first_and_each_port_once() -> None:
    routes = Routes(NEW, (OLD, Backend("again", NEW.port, "2.0.0")))
    assert routes.backends == (NEW, OLD)


def test_the_watcher_sees_each_rewrite_and_keeps_routing_past_a_bad_file(layout: ServiceLayout) -> None:
    watcher = RoutesWatcher(routes_path(layout))
    assert watcher.refresh() is None
    write_routes(layout, OLD)
    assert watcher.refresh() is not None and watcher.routes and watcher.routes.active == OLD
    for _ in range(20):  # rewrites in quick succession (same size, recycled inodes) are all seen
        write_routes(layout, NEW)
        assert watcher.refresh() and watcher.routes and watcher.routes.active == NEW
        write_routes(layout, OLD)
        assert watcher.refresh() and watcher.routes and watcher.routes.active == OLD
    routes_path(layout).write_text("{broken")
    assert watcher.refresh() and watcher.routes and watcher.routes.active == OLD
    routes_path(layout).unlink()
    assert watcher.refresh() and watcher.routes and watcher.routes.active == OLD
