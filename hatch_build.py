"""Build hook: the repository root is the ``recotrig`` package.

The standard wheel gets the root's folders under ``recotrig/`` through ``force-include`` in
pyproject.toml. Hatchling's own editable mode cannot map a directory to a *different* package
name, so for ``pip install -e .`` this hook ships a tiny import finder that resolves the name
``recotrig`` (and only that name) to the repository root. Nothing else is put on ``sys.path``, so
the folder ``io/`` can never shadow the standard library's ``io``.
"""

from __future__ import annotations

import os
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FINDER = '''"""Editable install of recotrig: maps the package name to its source tree."""
import importlib.util
import sys

_ROOT = {root!r}


class _RecotrigFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "recotrig":
            return None
        return importlib.util.spec_from_file_location(
            name, _ROOT + "/__init__.py", submodule_search_locations=[_ROOT]
        )


if not any(f is _RecotrigFinder or type(f).__name__ == "_RecotrigFinder" for f in sys.meta_path):
    sys.meta_path.append(_RecotrigFinder)
'''


class EditableFinderHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if version != "editable":
            return
        tmp = tempfile.mkdtemp(prefix="recotrig-editable-")
        finder = os.path.join(tmp, "_recotrig_source_finder.py")
        pth = os.path.join(tmp, "_recotrig_source_finder.pth")
        with open(finder, "w") as f:
            f.write(FINDER.format(root=os.path.abspath(self.root).replace(os.sep, "/")))
        with open(pth, "w") as f:
            f.write("import _recotrig_source_finder\n")
        build_data["force_include_editable"][finder] = "_recotrig_source_finder.py"
        build_data["force_include_editable"][pth] = "_recotrig_source_finder.pth"
