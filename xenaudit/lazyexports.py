"""Package attributes imported on first use (PEP 562 module ``__getattr__``).

``xenaudit.parsers`` and ``xenaudit.xlcfg`` name their public functions at the
top, but a command that needs one parser must not pay for importing all of them:
start-up time is a budget on a small Dom0 (tests/test_cli_startup.py pins it).
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False  # typing and collections.abc are not imported at run time (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from typing import Any


def module_getattr(
    package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> Callable[[str], Any]:
    """A ``__getattr__`` for `package` that imports ``package.<exports[name]>`` on first
    use and keeps the value in the package's `namespace`, so it is looked up once."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
