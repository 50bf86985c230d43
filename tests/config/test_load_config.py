"""load_config: several files, directories, and files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyxlb.config import ConfigError, ConfigErrors, load_config


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_files_are_read_in_order_and_share_defaults(tmp_path: Path) -> None:
    first = write(tmp_path / "a.cfg", "defaults\n  mode http\n  timeout server 7s\n")
    second = write(tmp_path / "b.cfg", "backend b\n  server s 10.0.0.1:80\n")
    config = load_config([first, second], env={})
    assert config.files == [first, second]
    assert config.backends["b"].mode == "http"
    assert config.backends["b"].timeouts.server == 7000
    assert str(config.backends["b"].servers[0].where) == f"{second}:2"


def test_each_file_starts_outside_any_section(tmp_path: Path) -> None:
    first = write(tmp_path / "a.cfg", "global\n")
    second = write(tmp_path / "b.cfg", "maxconn 10\n")
    with pytest.raises(ConfigError) as info:
        load_config([first, second], env={})
    assert str(info.value) == (f"{second}:1:1: 'maxconn' appears outside any section; start one "
                               "first with global, defaults, frontend, backend or listen")


def test_a_directory_stands_for_its_cfg_files_in_lexical_order(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write(conf / "20-backend.cfg", "backend b\n")
    write(conf / "10-defaults.cfg", "defaults\n  mode http\n")
    write(conf / "README", "not a configuration")
    write(conf / "30-old.cfg.bak", "not a configuration")
    (conf / "sub.cfg").mkdir()
    config = load_config([str(conf)], env={})
    assert config.files == [str(conf / "10-defaults.cfg"), str(conf / "20-backend.cfg")]
    assert config.backends["b"].mode == "http"


def test_a_single_path_string_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "a.cfg", "backend b\n")
    assert list(load_config(path, env={}).backends) == ["b"]


def test_environment_defaults_to_the_process(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYXLB_TEST_BACKEND", "from_env")
    path = write(tmp_path / "a.cfg", 'backend "$PYXLB_TEST_BACKEND"\n')
    assert list(load_config([path]).backends) == ["from_env"]
    assert list(load_config([path], env={"PYXLB_TEST_BACKEND": "given"}).backends) == ["given"]


def test_unreadable_files_are_errors_with_the_others(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.cfg")
    binary = tmp_path / "binary.cfg"
    binary.write_bytes(b"global\n  chroot /x\n  user \xff\n")
    bad = write(tmp_path / "bad.cfg", "global\n  chrot /x\n")
    with pytest.raises(ConfigErrors) as info:
        load_config([missing, str(binary), bad], env={})
    assert [str(e) for e in info.value.errors] == [
        f"{missing}: cannot read the file: No such file or directory",
        f"{binary}:3: the file is not valid UTF-8",
        f"{bad}:2:3: unknown keyword 'chrot' in the global section; did you mean 'chroot'?",
    ]


def test_no_file_at_all() -> None:
    with pytest.raises(ConfigError, match="^no configuration file given$"):
        load_config([], env={})
