"""The musicrec engine: audio, features, encoder, library, scan, recommend.

Nothing in this package imports Qt, pyqtgraph or sounddevice (checked by the
import-linter contracts in ``pyproject.toml``), so it runs and tests alone.
"""
