"""Discovery is one explicit step; a broken plugin is one clear error and can be retried."""

from __future__ import annotations

import pytest

from restorebench import Method, UserError, plugins, register
from restorebench.core.registry import METHODS, Registry, _unregister


def test_lookups_never_import_anything():
    empty: Registry = Registry("gadget")
    with pytest.raises(UserError, match=r"no gadget is registered \(call restorebench.load_plugins\(\) first\)"):
        empty.get("x")


def test_an_unknown_name_suggests_the_closest():
    with pytest.raises(UserError, match="did you mean 'denoise/median'"):
        METHODS.get("denoise/medain")


def test_register_needs_task_and_name_and_refuses_other_objects():
    class NoTask(Method):
        name = "no_task"

    with pytest.raises(ValueError, match="needs the class attributes `task` and `name`"):
        register(NoTask)
    with pytest.raises(TypeError, match="cannot register"):
        register(object())

    @register
    class Fine(Method):
        task, name = "denoise", "fine_example"

    try:
        assert METHODS.get("denoise/fine_example") is Fine
    finally:
        _unregister(Fine)


def _broken_entry_point(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[restorebench.methods]\ndenoise/broken = broken_plugin:Nope\n")
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_broken_entry_point_is_one_error_naming_it_and_discovery_is_not_marked_done(tmp_path, monkeypatch):
    _broken_entry_point(tmp_path, monkeypatch)
    monkeypatch.setattr(plugins, "_loaded", False)
    with pytest.raises(UserError) as info:
        plugins.load_plugins()
    text = str(info.value)
    assert "cannot load method plugin 'denoise/broken' (broken_plugin:Nope)" in text
    assert "RuntimeError: broken on import" in text and "broken-plugin 0.1" in text
    assert not plugins.loaded()
    monkeypatch.syspath_prepend(str(tmp_path))  # still broken: the same error again, not a silent success
    with pytest.raises(UserError, match="denoise/broken"):
        plugins.load_plugins()
    plugins.load_plugins(entry_points=False)  # without the plugins, the built-ins load
    assert plugins.loaded() and "denoise/median" in METHODS
