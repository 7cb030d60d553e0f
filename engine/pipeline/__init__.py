"""The message pipeline: Decoder / Processor / Encoder stages and the built-in processors.

Kept import-light; import from the submodules (``types``, ``registry``, ``runner``).
"""
