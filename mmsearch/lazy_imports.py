"""Imports a one-query process can do without: LanceDB's REST client, and pandas behind pyarrow's dataset module.

The REST client. `import lancedb` costs ~3.4 s on two cores, 2 s of it in `lance_namespace_urllib3_client`: an OpenAPI client for
LanceDB's REST namespaces whose ~400 `pydantic.validate_call` methods build their validators at import time.
`lance_namespace` (which `lancedb.db` imports) takes only its model classes from the `.models` subpackage, but
importing any subpackage runs the package's `__init__`, which imports every API class.

`defer()` registers that package as an empty module with the real search path, so `.models` imports alone;
the first attribute asked of the package itself (a REST namespace, a remote connection) runs the real
`__init__` there and then, so nothing changes for code that uses it. A cold CLI search saves ~2 s.
"""

from __future__ import annotations

import importlib.util
import sys
import types

PACKAGE = "lance_namespace_urllib3_client"


def defer(package: str = PACKAGE) -> bool:
    """Register `package` to run its `__init__` on first use. False where it is already imported or absent."""
    if package in sys.modules:
        return False
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or not spec.submodule_search_locations:
        return False
    module = types.ModuleType(package)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = package
    module.__getattr__ = _loader(module, spec.origin)  # type: ignore[attr-defined]
    sys.modules[package] = module
    return True


def _loader(module: types.ModuleType, origin: str):
    def load(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        del module.__getattr__  # type: ignore[attr-defined]
        with open(origin, encoding="utf-8") as f:
            exec(compile(f.read(), origin, "exec"), module.__dict__)
        return getattr(module, name)

    return load


class _NoPandas:
    """A finder that says pandas is not installed, for as long as it sits on sys.meta_path."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"{name} is not loaded on mmsearch's one-query path")
        return None


def arrow_without_pandas() -> bool:
    """Import pyarrow's dataset module while pandas looks absent, for a process that answers one query.

    `pyarrow._dataset` builds a scalar expression at import time, and pyarrow's pandas shim imports pandas to
    ask whether that value is a pandas object: 0.3-0.4 s of a cold `mmsearch search`, which never converts
    anything to pandas. The shim remembers the answer, so in this process pyarrow's pandas conversions
    (`to_pandas`) are off; `import pandas` itself still works afterwards. Only the cold CLI's text path calls
    this; the server and the web app (which use pandas) never do. False where pyarrow.dataset is already in.
    """
    if "pyarrow.dataset" in sys.modules or "pandas" in sys.modules:
        return False
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        import pyarrow.dataset  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
    return True
