"""Interactive plotly figures of a campaign: hypervolume traces, Pareto fronts in 2-D and 3-D, pairwise
scatter matrices, parallel coordinates, and best-so-far progress for one objective.

Each figure comes back as a plain dict (``data`` and ``layout``) whose numeric arrays plotly.py encodes as
base64 typed arrays; the page adds plotly.js and one shared template. Every study's front is drawn whole;
its other points are the thinned sample of :mod:`.downsample`, faint, and a note says how many are shown.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .data import DomainView, StudyView

#: colours per optimizer label (Okabe-Ito first, colour-blind safe), then plotly's
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
           "#636EFA", "#EF553B", "#00CC96", "#AB63FA"]
#: marker symbols per seed (2-D; 3-D and scatter matrices use the first few that they support)
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "triangle-down", "pentagon", "star"]
SYMBOLS_3D = ["circle", "square", "diamond", "cross", "x", "circle-open", "square-open", "diamond-open"]


def plotly_graph_objects() -> Any:
    """``plotly.graph_objects``, or an ImportError that says how to install it."""
    try:
        import plotly.graph_objects as go
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the HTML report needs plotly: pip install 'design-workbench[report]'") from None
    return go


def _as_dict(fig: Any) -> dict[str, Any]:
    import plotly.io as pio

    out = json.loads(pio.to_json(fig, validate=False))
    out.get("layout", {}).pop("template", None)  # the page applies one shared template
    return out


def colours(labels: list[str]) -> dict[str, str]:
    """A colour per optimizer label, in order of appearance."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(dict.fromkeys(labels))}


def _axis_title(domain: DomainView, j: int) -> str:
    o = domain.objectives[j]
    return f"{o.name} ({'min' if o.direction == 'minimize' else 'max'})"


def _seeds(domain: DomainView) -> dict[int, int]:
    return {s: i for i, s in enumerate(sorted({v.seed for v in domain.studies}))}


def _hover(domain: DomainView, view: StudyView, kind: str, dims: list[int]) -> str:
    parts = [f"{domain.objectives[j].name} %{{{axis}:.5g}}" for j, axis in zip(dims, "xyz")]
    return f"{view.label} seed {view.seed}<br>design %{{customdata}} ({kind})<br>" + "<br>".join(parts) + \
        "<extra></extra>"


def _sample_note(domain: DomainView) -> str:
    shown = sum(len(v.rows.dominated) for v in domain.studies)
    total = sum(v.rows.n_dominated for v in domain.studies)
    front = sum(len(v.rows.front) for v in domain.studies)
    inf_shown = sum(len(v.rows.infeasible) for v in domain.studies)
    inf_total = sum(v.rows.n_infeasible for v in domain.studies)
    failed = sum(v.rows.n_failed for v in domain.studies)
    text = f"all {front:,} non-dominated points; dominated: {shown:,} of {total:,} shown"
    if inf_total:
        text += f"; infeasible: {inf_shown:,} of {inf_total:,}"
    if failed:
        text += f"; {failed:,} failed (no values)"
    return text


def _layout(title: str, note: str | None = None, height: int = 480, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
                              "height": height, "margin": {"l": 60, "r": 20, "t": 50, "b": 70},
                              "legend": {"itemsizing": "constant"}, "hovermode": "closest"}
    if note:
        layout["annotations"] = [{"text": note, "xref": "paper", "yref": "paper", "x": 0, "y": -0.16,
                                  "xanchor": "left", "showarrow": False, "font": {"size": 11, "color": "#555"}}]
    layout.update(extra)
    return layout


def _ranges(domain: DomainView, dims: list[int]) -> list[list[float]] | None:
    """Axis ranges ``[lo, hi]`` per objective in ``dims`` that fit every feasible point plotted and the central
    96% of the infeasible ones (a few wild infeasible designs would otherwise squeeze the front into a corner);
    None when nothing is plotted. The plot's autoscale button still shows every point."""
    feasible = [v.values[np.concatenate([v.rows.front, v.rows.dominated])][:, dims] for v in domain.studies]
    infeasible = [v.values[v.rows.infeasible][:, dims] for v in domain.studies]
    feasible = np.vstack(feasible) if feasible else np.empty((0, len(dims)))
    infeasible = np.vstack(infeasible) if infeasible else np.empty((0, len(dims)))
    if not len(feasible) and not len(infeasible):
        return None
    parts = []
    if len(feasible):
        parts += [feasible.min(axis=0), feasible.max(axis=0)]
    if len(infeasible):
        parts += [np.percentile(infeasible, 2, axis=0), np.percentile(infeasible, 98, axis=0)]
    lo, hi = np.min(parts, axis=0), np.max(parts, axis=0)
    pad = np.where(hi > lo, 0.05 * (hi - lo), np.maximum(0.05 * np.abs(lo), 1e-9))
    return [[float(a), float(b)] for a, b in zip(lo - pad, hi + pad)]


def front_figure(domain: DomainView) -> dict[str, Any]:
    """Pareto fronts of a domain's studies in 2-D (two objectives) or 3-D (three or more: the first three)."""
    go = plotly_graph_objects()
    k = len(domain.objectives)
    dims = list(range(min(k, 3)))
    three = len(dims) == 3
    cols = colours([v.label for v in domain.studies])
    seeds = _seeds(domain)
    traces = []
    for view in domain.studies:
        symbols = SYMBOLS_3D if three else SYMBOLS
        symbol = symbols[seeds[view.seed] % len(symbols)]
        group = view.name
        for kind, rows, style in (("dominated", view.rows.dominated, {"opacity": 0.2 if three else 0.25,
                                                                      "size": 1.5 if three else 5}),
                                  ("infeasible", view.rows.infeasible, {"opacity": 0.3 if three else 0.45,
                                                                        "size": 1.5 if three else 6}),
                                  ("front", view.rows.front, {"opacity": 1.0, "size": 2 if three else 8})):
            if not len(rows):
                continue
            pts = view.values[rows]
            marker = {"color": "#9a9a9a" if kind == "infeasible" else cols[view.label],
                      "symbol": "x" if kind == "infeasible" else symbol, "size": style["size"],
                      "opacity": style["opacity"]}
            if kind == "front":
                marker["line"] = {"width": 0.5, "color": "white"} if not three else {"width": 0}
            name = f"{view.label} seed {view.seed}" + ("" if kind == "front" else f" ({kind})")
            common = {"mode": "markers", "name": name,
                      "legendgroup": group, "showlegend": kind == "front" or three,
                      "customdata": rows.astype(np.int64), "marker": marker,
                      "hovertemplate": _hover(domain, view, kind, dims)}
            if three and kind != "front":  # in 3-D a cloud hides the fronts: in the legend, off until clicked
                common["visible"] = "legendonly"
            if three:
                traces.append(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], **common))
            else:
                traces.append(go.Scatter(x=pts[:, 0], y=pts[:, 1], **common))
    shown = f" ({', '.join(o.name for o in domain.objectives[:3])})" if k > 3 else ""
    title = f"{domain.name}: Pareto fronts{shown}"
    ranges = _ranges(domain, dims)
    axes = [{"title": {"text": _axis_title(domain, j)}, **({"range": ranges[j]} if ranges else {})} for j in dims]
    if three:
        scene = {f"{a}axis": axis for a, axis in zip("xyz", axes)}
        # look from the ideal corner, so better fronts sit in front of worse ones and of the dominated points
        eye = [1.6 * (-1.0 if domain.objectives[j].direction == "minimize" else 1.0) for j in dims]
        scene["camera"] = {"eye": {"x": eye[0], "y": eye[1], "z": 0.8 * eye[2]}}
        layout = _layout(title, _sample_note(domain), height=560, scene=scene,
                         margin={"l": 0, "r": 0, "t": 50, "b": 70})
    else:
        layout = _layout(title, _sample_note(domain), xaxis=axes[0], yaxis=axes[1])
    return _as_dict(go.Figure(data=traces, layout=layout))


def pairwise_figure(domain: DomainView) -> dict[str, Any]:
    """A scatter matrix of every pair of objectives (three or more objectives)."""
    go = plotly_graph_objects()
    cols = colours([v.label for v in domain.studies])
    seeds = _seeds(domain)
    traces = []
    for view in domain.studies:
        symbol = SYMBOLS_3D[seeds[view.seed] % len(SYMBOLS_3D)]
        for kind, rows, opacity, size in (("dominated", view.rows.dominated, 0.2, 3),
                                          ("front", view.rows.front, 1.0, 5)):
            if not len(rows):
                continue
            pts = view.values[rows]
            traces.append(go.Splom(
                dimensions=[{"label": o.name, "values": pts[:, j]} for j, o in enumerate(domain.objectives)],
                name=f"{view.label} seed {view.seed}" + ("" if kind == "front" else " (dominated)"),
                legendgroup=view.name, showlegend=kind == "front", customdata=rows.astype(np.int64),
                marker={"color": cols[view.label], "size": size, "opacity": opacity, "symbol": symbol},
                diagonal={"visible": False}, showupperhalf=False,
                hovertemplate=f"{view.label} seed {view.seed}<br>design %{{customdata}} ({kind})<extra></extra>"))
    k = len(domain.objectives)
    return _as_dict(go.Figure(data=traces, layout=_layout(f"{domain.name}: objectives pairwise", _sample_note(domain),
                                                          height=max(480, 170 * k), dragmode="select")))


def parallel_figure(domain: DomainView) -> dict[str, Any]:
    """Parallel coordinates of every study's front: one axis per objective and one for the optimizer."""
    go = plotly_graph_objects()
    labels = list(dict.fromkeys(v.label for v in domain.studies))
    cols = colours(labels)
    parts = [(view.values[view.rows.front], labels.index(view.label))
             for view in domain.studies if len(view.rows.front)]
    values = np.vstack([p for p, _ in parts]) if parts else np.empty((0, len(domain.objectives)))
    code = np.concatenate([np.full(len(p), c, dtype=np.float64) for p, c in parts]) if parts else np.empty(0)
    n = max(1, len(labels) - 1)
    scale = [[i / n, cols[label]] for i, label in enumerate(labels)] if len(labels) > 1 else \
        [[0.0, cols[labels[0]]], [1.0, cols[labels[0]]]]
    dims = [{"label": "optimizer", "values": code, "tickvals": list(range(len(labels))), "ticktext": labels,
             "range": [-0.2, max(0.2, len(labels) - 0.8)]}]
    for j, o in enumerate(domain.objectives):
        dims.append({"label": _axis_title(domain, j), "values": values[:, j]})
    trace = go.Parcoords(line={"color": code, "colorscale": scale, "cmin": 0, "cmax": max(1, len(labels) - 1)},
                         dimensions=dims, labelfont={"size": 12}, tickfont={"size": 10})
    front = len(values)
    return _as_dict(go.Figure(data=[trace], layout=_layout(
        f"{domain.name}: non-dominated designs, parallel coordinates",
        f"{front:,} non-dominated designs of {len(domain.studies)} studies; drag along an axis to filter",
        height=480, margin={"l": 80, "r": 60, "t": 110, "b": 70})))


def progress_figure(domain: DomainView) -> dict[str, Any]:
    """One objective: every study's values against the evaluation number, with its best so far."""
    go = plotly_graph_objects()
    cols = colours([v.label for v in domain.studies])
    seeds = _seeds(domain)
    o = domain.objectives[0]
    sign = 1.0 if o.direction == "minimize" else -1.0
    traces = []
    for view in domain.studies:
        symbol = SYMBOLS[seeds[view.seed] % len(SYMBOLS)]
        rows = view.rows.dominated
        if len(rows):
            traces.append(go.Scatter(x=rows.astype(np.int64), y=view.values[rows, 0], mode="markers",
                                     name=f"{view.label} seed {view.seed} (others)", legendgroup=view.name,
                                     showlegend=False, marker={"color": cols[view.label], "size": 4, "opacity": 0.25,
                                                               "symbol": symbol},
                                     hovertemplate=f"{view.label} seed {view.seed}<br>design %{{x}}<br>{o.name} "
                                                   "%{y:.5g}<extra></extra>"))
        bad = view.rows.infeasible
        if len(bad):
            traces.append(go.Scatter(x=bad.astype(np.int64), y=view.values[bad, 0], mode="markers",
                                     name=f"{view.label} seed {view.seed} (infeasible)", legendgroup=view.name,
                                     showlegend=False, marker={"color": "#9a9a9a", "size": 5, "opacity": 0.45,
                                                               "symbol": "x"},
                                     hovertemplate=f"{view.label} seed {view.seed}<br>design %{{x}} (infeasible)<br>"
                                                   f"{o.name} %{{y:.5g}}<extra></extra>"))
        m = view.minimized[:, 0].copy()
        m[~view.feasible | ~np.isfinite(m)] = np.inf
        running = np.minimum.accumulate(m)
        improved = np.flatnonzero(np.isfinite(running) & (np.diff(running, prepend=np.inf) < 0))
        if len(improved):
            xs = np.append(improved, len(m) - 1)
            ys = np.append(running[improved], running[-1]) * sign
            traces.append(go.Scatter(x=xs.astype(np.int64), y=ys, mode="lines", line={"shape": "hv",
                                     "color": cols[view.label], "width": 2}, name=f"{view.label} seed {view.seed}",
                                     legendgroup=view.name, hovertemplate="best so far %{y:.5g} after design "
                                                                          "%{x}<extra></extra>"))
        front = view.rows.front
        if len(front):
            traces.append(go.Scatter(x=front.astype(np.int64), y=view.values[front, 0], mode="markers",
                                     name=f"{view.label} seed {view.seed} (best)", legendgroup=view.name,
                                     showlegend=False, marker={"color": cols[view.label], "size": 10, "symbol": symbol,
                                                               "line": {"width": 1, "color": "black"}},
                                     hovertemplate=f"best of {view.label} seed {view.seed}<br>design %{{x}}<br>"
                                                   f"{o.name} %{{y:.5g}}<extra></extra>"))
    note = _sample_note(domain).replace("non-dominated", "best").replace("dominated:", "others:")
    return _as_dict(go.Figure(data=traces, layout=_layout(
        f"{domain.name}: {o.name} ({'min' if sign > 0 else 'max'}) by evaluation", note,
        xaxis={"title": {"text": "design (evaluation number)"}}, yaxis={"title": {"text": _axis_title(domain, 0)}})))


def _steps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The corners of the step function that holds ``y[i]`` from ``x[i]`` to ``x[i + 1]`` (a polygon edge that
    reads the same in both directions, unlike plotly's "hv" line shape)."""
    xs = np.repeat(x, 2)[1:]
    ys = np.repeat(y, 2)[:-1]
    return xs, ys


def hypervolume_figure(domain: str, traces: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    """Hypervolume against evaluations per optimizer: the mean over seeds with a +-1 std band, and each seed."""
    from ..plotting.traces import seed_grid

    go = plotly_graph_objects()
    cols = colours(labels)
    data = []
    for label, sub in traces.groupby("label", sort=False):
        colour = cols.get(label, PALETTE[0])
        for seed, one in sub.groupby("seed", sort=True):
            one = one.sort_values("evaluations")
            data.append(go.Scatter(x=one["evaluations"].to_numpy(), y=one["hypervolume"].to_numpy(), mode="lines",
                                   line={"color": colour, "width": 1, "shape": "hv"}, opacity=0.35,
                                   name=f"{label} seed {seed}", legendgroup=label, showlegend=False,
                                   hovertemplate=f"{label} seed {seed}<br>%{{x}} evaluations<br>hypervolume "
                                                 "%{y:.5g}<extra></extra>"))
        try:
            grid, values, seeds = seed_grid(sub)
        except ValueError:  # seeds that do not overlap yet (a running campaign): their own lines only
            continue
        mean = values.mean(axis=0)
        std = values.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros_like(mean)
        if len(seeds) > 1:
            xs, upper = _steps(grid, mean + std)
            _, lower = _steps(grid, mean - std)
            data.append(go.Scatter(x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([upper, lower[::-1]]),
                                   mode="lines", fill="toself", fillcolor=colour, opacity=0.18, line={"width": 0},
                                   name=f"{label} +-1 std", legendgroup=label, showlegend=False, hoverinfo="skip"))
        ends = np.zeros(len(grid))
        ends[-1] = 8  # a dot on the final value, which a step line shows only as its last riser
        data.append(go.Scatter(x=grid, y=mean, mode="lines+markers",
                               line={"color": colour, "width": 2.5, "shape": "hv"},
                               marker={"size": ends, "color": colour},
                               name=f"{label} (mean of {len(seeds)} seed{'s' * (len(seeds) != 1)})", legendgroup=label,
                               customdata=std, hovertemplate=f"{label}<br>%{{x}} evaluations<br>hypervolume %{{y:.5g}}"
                                                             " +- %{customdata:.3g}<extra></extra>"))
    return _as_dict(go.Figure(data=data, layout=_layout(
        f"{domain}: hypervolume", "mean over seeds with a +-1 std band; thin lines: single seeds",
        xaxis={"title": {"text": "evaluations"}}, yaxis={"title": {"text": "hypervolume"}})))


def plottable(domain: DomainView) -> bool:
    """Whether any study of the domain has a design with values to plot (not every evaluation failed)."""
    return any(len(v.rows.front) + len(v.rows.dominated) + len(v.rows.infeasible) for v in domain.studies)


def domain_figures(domain: DomainView, traces: pd.DataFrame | None) -> list[tuple[str, dict[str, Any]]]:
    """The figures of one domain, each with its kind: hypervolume, front (2-D or 3-D), pairwise, parallel."""
    labels = list(dict.fromkeys(v.label for v in domain.studies))
    out = []
    if traces is not None:
        sub = traces[traces["domain"] == domain.name]
        if len(sub):
            out.append(("hypervolume", hypervolume_figure(domain.name, sub, labels)))
    if not plottable(domain):
        return out
    k = len(domain.objectives)
    if k == 1:
        out.append(("progress", progress_figure(domain)))
        return out
    out.append(("front-3d" if k >= 3 else "front-2d", front_figure(domain)))
    if k >= 3:
        out.append(("pairwise", pairwise_figure(domain)))
    out.append(("parallel", parallel_figure(domain)))
    return out
