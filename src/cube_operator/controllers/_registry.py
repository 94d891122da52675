"""The operator's own kopf registry.

Handlers register here, not in kopf's process-wide default registry, so that importing
cube_operator (for its models, metrics or client) never adds handlers to another kopf
operator running in the same process, e.g. under kopf.testing.KopfRunner.
"""
import kopf

registry = kopf.OperatorRegistry()
