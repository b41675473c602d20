"""The benchmark scripts' report code under test: benchmarks/ is a folder of scripts, not a package, so a test
loads a script by its file here rather than putting benchmarks/ on sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """benchmarks/<name>.py as a module, loaded once. Report modules keep their bare name (`recipe_report`), the name
    under which a sibling script run from benchmarks/ imports them, so `recipe.py` finds the one already loaded."""
    module_name = module_name or name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
