"""Settings: CLI > env > file > default, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferpack.config import ServerConfig, load_config
from inferpack.errors import ConfigError

REQUIRED = {"deploy_name": "demo", "model_dir": "/models/demo"}


def test_defaults() -> None:
    config = load_config(env={}, overrides=REQUIRED)
    assert config == ServerConfig(deploy_name="demo", model_dir=Path("/models/demo"))
    assert config.port == 8080
    assert config.backend == "onnxruntime"


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text(
        'deploy_name = "fromfile"\nmodel_dir = "/m"\nport = 9000\nmax_batch_size = 4\nmax_delay_ms = 7.5\n'
    )
    env = {"INFERPACK_PORT": "9100", "INFERPACK_REUSE_PORT": "yes"}
    config = load_config(file=file, env=env, overrides={"max_batch_size": 16, "port": None})
    assert config.deploy_name == "fromfile"
    assert config.port == 9100  # env beats file; a None override is "not given"
    assert config.max_batch_size == 16  # CLI beats file
    assert config.max_delay_ms == 7.5
    assert config.reuse_port is True


def test_config_file_from_env(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('deploy_name = "x"\nmodel_dir = "/m"\n')
    assert load_config(env={"INFERPACK_CONFIG": str(file)}).deploy_name == "x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INFERPACK_PORT": "eighty"}, "port"),
        ({"INFERPACK_PORT": "70000"}, "port"),
        ({"INFERPACK_MAX_BATCH_SIZE": "0"}, "max_batch_size"),
        ({"INFERPACK_BACKEND": "cuda-magic"}, "backend"),
        ({"INFERPACK_PRECISION": "int4"}, "precision .int4. is unknown"),
        ({"INFERPACK_REUSE_PORT": "maybe"}, "reuse_port"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env=env, overrides=REQUIRED)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('deploy_name = "x"\nmodel_dir = "/m"\nbatch = 3\n')
    with pytest.raises(ConfigError, match="unknown settings batch"):
        load_config(file=file, env={})


def test_missing_required() -> None:
    with pytest.raises(ConfigError, match="deploy_name"):
        load_config(env={}, overrides={"model_dir": "/m"})


def test_deploy_name_with_slash() -> None:
    with pytest.raises(ConfigError, match="deploy_name"):
        load_config(env={}, overrides={"deploy_name": "a/b", "model_dir": "/m"})


def test_license_settings_come_from_the_command_line_only(tmp_path: Path) -> None:
    env = {
        "INFERPACK_DEVELOPMENT_MODE": "1",
        "INFERPACK_HOST_ROOT": "/empty",
        "INFERPACK_VENDOR_PUBLIC_KEY": "/tmp/mine.pub",
        "INFERPACK_LICENSE_FILE": "/tmp/mine.lic",
    }
    config = load_config(env=env, overrides=REQUIRED)
    assert (config.development_mode, config.host_root) == (False, Path("/"))
    assert config.license_file is None and config.vendor_public_key is None
    file = tmp_path / "s.toml"
    file.write_text('deploy_name = "x"\nmodel_dir = "/m"\ndevelopment_mode = true\n')
    with pytest.raises(ConfigError, match="development_mode can only be given as a flag"):
        load_config(file=file, env={})


def test_a_license_needs_a_state_dir_and_excludes_development_mode() -> None:
    with pytest.raises(ConfigError, match="state_dir"):
        load_config(env={}, overrides={**REQUIRED, "license_file": "/l.lic"})
    with pytest.raises(ConfigError, match="exclude each other"):
        load_config(
            env={},
            overrides={**REQUIRED, "license_file": "/l.lic", "state_dir": "/s", "development_mode": True},
        )
