"""Import LanceDB without the REST client it never uses here.

`import lancedb` costs ~3.4 s on two cores, 2 s of it in `lance_namespace_urllib3_client`: an OpenAPI client for
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
