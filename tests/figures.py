"""What a figure test checks: the figure that was saved, not only that a PNG exists.

`saved_figures` records every matplotlib figure as it is saved; `check_axes`
asserts an axes' labels, title and legend, and that its data area is not
blank: it holds artists and its rendered pixels are not all one colour.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@pytest.fixture
def saved_figures(monkeypatch) -> list[Figure]:
    """Every figure saved during the test, in order (saving still happens)."""
    saved: list[Figure] = []
    original = Figure.savefig

    def record(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    yield saved
    for figure in saved:
        plt.close(figure)


def legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [text.get_text() for text in legend.get_texts()]


def check_axes(
    ax,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    legend: list[str] | None = None,
) -> None:
    """``ax`` has these labels (substrings), a legend holding ``legend``, and a
    data area that is drawn on."""
    if xlabel is not None:
        assert xlabel in ax.get_xlabel(), ax.get_xlabel()
    if ylabel is not None:
        assert ylabel in ax.get_ylabel(), ax.get_ylabel()
    if title is not None:
        assert title in ax.get_title(), ax.get_title()
    if legend is not None:
        assert set(legend) <= set(legend_labels(ax)), legend_labels(ax)
    artists = ax.lines + ax.collections + ax.patches + ax.images
    assert artists, "nothing drawn in the axes"
    canvas = FigureCanvasAgg(ax.figure)  # the figure may be closed once saved
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    box = ax.get_window_extent()
    height = pixels.shape[0]
    area = pixels[
        int(height - box.y1) + 2 : int(height - box.y0) - 2, int(box.x0) + 2 : int(box.x1) - 2
    ]
    assert area.size and area.reshape(-1, 3).std(axis=0).max() > 1, "the data area is blank"
