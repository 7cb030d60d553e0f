"""The AI gateway: provider protocol and registry, fallback chains, context selection.

Kept import-light: ``engine.flow`` and the providers import from submodules directly.
"""
