"""The playgrounds' plots: a figure shown as one PNG in an ``Output`` widget, and :class:`LivePlot`, a figure
built once and updated in place, drawn at a fraction of a new figure's cost.

Taught in notebooks/02, 03, 06 and 07 ("Try it").
"""

from __future__ import annotations

from typing import Any


def show_figure(output: Any, figure: Any, close: bool = True) -> None:
    """Replace what an ``Output`` widget shows with one matplotlib figure (None: show nothing), then close it
    (unless ``close`` is False: a figure kept to be updated in place).

    The outputs are set in one assignment, one message to the page: ``clear_output`` followed by
    ``append_display_data`` would keep every earlier plot in the widget's state, so each update would
    send all of them again and grow slower.
    """
    if figure is None:
        output.outputs = ()
        return
    import io

    import matplotlib.pyplot as plt

    # Rendered here, once: Jupyter's own formatter saves with bbox_inches="tight", which draws the figure
    # twice (the draw functions already lay their figures out tightly).
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", pil_kwargs={"compress_level": PNG_LEVEL})
    if close:
        plt.close(figure)
    show_png(output, buffer.getvalue())


def show_png(output: Any, png: bytes) -> None:
    """Replace what an ``Output`` widget shows with one PNG image (see :func:`show_figure`)."""
    import base64

    data = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<playground plot>"}
    output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


# zlib's fastest level: the plots' PNGs come out ~5% larger and encode in ~60% of the default level's time.
PNG_LEVEL = 1


class LivePlot:
    """A playground's plot that is built once and then updated in place: what moves is the artists' data.

    Building a figure (axes, ticks, labels, legend, a tight layout) costs more than drawing it; a control
    change only moves data, so a subclass builds its artists in :meth:`build` (the layout is fixed there)
    and sets their data in :meth:`refresh`. The figure is not pyplot's (a kernel would show it again at
    the end of the cell) and has its own Agg canvas.

    Text is most of what drawing costs, and a plot's text (ticks, labels, title, legend) may not change
    with the data: a subclass that says so (:meth:`show_text`, and :meth:`text_key` naming each version of
    it) has it drawn once per version; :meth:`png` then draws the rest and puts the text's pixels back.
    The text lies outside the axes, where no data is drawn, so the image is the one a full draw gives.

    Call it as a playground's ``draw``: ``plot(values, settings)`` returns the updated figure.
    """

    figsize: tuple[float, float] = (6.4, 4.8)

    def __init__(self) -> None:
        self.figure: Any = None
        self._text: dict[Any, tuple[Any, Any]] = {}

    def __call__(self, values: dict[str, Any], settings: dict[str, Any]) -> Any:
        if self.figure is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self.figure = Figure(figsize=self.figsize)
            FigureCanvasAgg(self.figure)
            self.build(self.figure, values, settings)
        self.refresh(values, settings)
        return self.figure

    def build(self, figure: Any, values: dict[str, Any], settings: dict[str, Any]) -> None:
        """Make the axes and artists (with no data needed yet) and fix the layout."""
        raise NotImplementedError

    def refresh(self, values: dict[str, Any], settings: dict[str, Any]) -> None:
        """Set the artists' data for these values."""
        raise NotImplementedError

    def show_text(self, visible: bool) -> bool:
        """Show or hide the text that does not follow the data; False: this plot has none (the default)."""
        return False

    def text_key(self) -> Any:
        """Which version of that text the plot shows now (e.g. whether the legend has an entry)."""
        return None

    def png(self, values: dict[str, Any], settings: dict[str, Any]) -> bytes:
        """The plot for these values as PNG bytes."""
        import io

        import numpy as np
        from PIL import Image

        figure = self(values, settings)
        canvas, buffer = figure.canvas, io.BytesIO()
        if not self.show_text(False):
            # The canvas drawn and its pixels encoded: `savefig` would draw twice, a layout pass first (the
            # figure keeps tight_layout's engine) and then the pixels, though the layout was fixed in build.
            canvas.draw()
            Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buffer, format="png", compress_level=PNG_LEVEL)
            return buffer.getvalue()
        key = self.text_key()
        if key not in self._text:  # this version of the text: drawn once, with the data, and without the text
            self.show_text(True)
            canvas.draw()
            full = np.array(canvas.buffer_rgba())
            self.show_text(False)
            canvas.draw()
            self._text[key] = (full, (full != np.asarray(canvas.buffer_rgba())).any(axis=2))
        else:
            canvas.draw()
        full, text = self._text[key]
        Image.fromarray(np.where(text[..., None], full, np.asarray(canvas.buffer_rgba()))).save(
            buffer, format="png", compress_level=PNG_LEVEL)
        return buffer.getvalue()
