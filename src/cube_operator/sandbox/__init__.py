"""`cube-operator dev`: the self-contained sandbox."""
from .runner import run_sandbox

__all__ = ["run_sandbox"]
