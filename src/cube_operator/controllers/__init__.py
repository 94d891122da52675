"""kopf handlers, one module per kind. Importing this package registers them."""
from . import _startup, cube, domain, providerconfig, restore, snapshot, tcpmapping, webhook  # noqa: F401
from ._registry import registry
from ._runtime import OperatorOptions, options

__all__ = ["OperatorOptions", "options", "registry"]
