"""musicrec-gui: the Qt desktop app on top of ``musicrec_gui.core``.

All Qt, plotting and audio-device code of musicrec lives in this package; the
core engine knows nothing of it. Start it with ``musicrec-gui`` or
``python -m musicrec_gui.gui``.
"""
