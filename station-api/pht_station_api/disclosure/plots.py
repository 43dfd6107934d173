"""Plots: every PNG made canonical, and every result with a plot held for a steward.

A plot is pixels the algorithm chose, and no automatic check can tell what they encode (a
patient list drawn as text, numbers in the low bits of colours). So a result with a plot is
always held (``PlotHeld``), whatever the image review says. A plot the station cannot read as
a PNG within its bounds blocks the result (``InvalidPlot``, naming the plot and the reason);
what leaves, for the steward's eyes and after release, is the canonical file of
:mod:`.png`, never the uploaded bytes.
"""

import base64
import binascii
from dataclasses import dataclass, field

from pht_contract.manifests import PlotFile
from pht_station_api.disclosure.decisions import Finding, Outcome, Rule
from pht_station_api.disclosure.png import InvalidPlot, canonical_png


@dataclass
class PlotReview:
    findings: list[Finding] = field(default_factory=list)
    #: The plots as they would leave: each file replaced by its canonical PNG.
    plots: list[PlotFile] = field(default_factory=list)


def canonical_plot(plot: PlotFile) -> PlotFile:
    """The plot with its file re-encoded; :class:`InvalidPlot` when that is refused."""
    try:
        raw = base64.b64decode(plot.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPlot("the file is not valid base64") from None
    fresh = canonical_png(raw)
    return plot.model_copy(update={"data_base64": base64.b64encode(fresh.data).decode("ascii")})


def review_plots(plots: list[PlotFile]) -> PlotReview:
    review = PlotReview()
    for plot in plots:
        try:
            review.plots.append(canonical_plot(plot))
        except InvalidPlot as invalid:
            review.findings.append(
                Finding(Rule.INVALID_PLOT, Outcome.BLOCKED, f"{plot.name}: {invalid}")
            )
        else:
            review.findings.append(Finding(Rule.PLOT_HELD, Outcome.HELD, plot.name))
    return review
