"""What goes beyond one song's neighbours: the radio, a path between two songs, and why two songs match.

It connects the actions that ask for them to the views that show them; the window only places it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from musicrec_gui.gui.match_view import MatchView
from musicrec_gui.gui.path_view import PathView
from musicrec_gui.gui.radio import Radio


class Explorer(QObject):
    """Owns the radio and opens the path and match views.

    Parameters
    ----------
    session, recommender, preview, jobs
    actions : SongActions
        Its ``pathRequested`` and ``radioRequested`` open a path and start the radio.
    recommendations : RecommendationPanel
        Its "Why?" buttons open the match view; the radio honours its exclusions.
    window : QWidget
        Parent of the dialogs.
    """

    pathShown = Signal(list)  # track ids of the path on screen (empty: none)
    message = Signal(str)  # for the status bar

    def __init__(self, session, recommender, preview, jobs, actions, recommendations, window):
        super().__init__(window)
        self.session, self.recommender, self.preview, self.jobs = session, recommender, preview, jobs
        self.window = window
        self.radio = Radio(session, recommender, preview, parent=self, exclusions=lambda: (
            recommendations.exclude_artist.isChecked(), recommendations.exclude_album.isChecked()))
        self.radio.message.connect(lambda text: self.message.emit(text))
        self.path_view: PathView | None = None
        self.match_view: MatchView | None = None
        actions.pathRequested.connect(self.show_path)
        actions.radioRequested.connect(self.start_radio)
        recommendations.explainRequested.connect(self.explain)

    def start_radio(self, track) -> None:
        """Play ``track`` from its start, then the nearest songs not played yet."""
        self.radio.start(track)

    def show_path(self, start, end) -> PathView:
        if self.path_view is not None:
            self.path_view.close()  # deletes it
        view = PathView(self.session, self.recommender, self.radio, start, end, parent=self.window)
        view.pathChanged.connect(self.pathShown)
        view.saved.connect(self.message)
        view.destroyed.connect(lambda *_: self._forget("path_view", view))
        self.path_view = view
        self.pathShown.emit(view.track_ids())
        view.show()
        return view

    def explain(self, track) -> MatchView | None:
        """Show where the anchor and ``track`` match best (one match view, shown again for each pair)."""
        anchor = self.session.anchor
        if anchor is None:
            return None
        if self.match_view is None:
            self.match_view = MatchView(self.session, self.preview, self.jobs, parent=self.window)
        self.match_view.show_pair(self.recommender.index, anchor, track)
        return self.match_view

    def _forget(self, name: str, view) -> None:
        """A dialog closed (and was deleted): drop the reference, unless a newer one replaced it."""
        if getattr(self, name) is view:
            setattr(self, name, None)
