"""The HTML page of a campaign report: one self-contained file (plotly.js, figures and pictures inline).

Figures travel as JSON in ``<script type="application/json" class="wb-figure">`` blocks that a short script
hands to ``Plotly.newPlot``: SVG plots at once, WebGL ones (3-D, scatter matrix, parallel coordinates) when
scrolled to, releasing those far away (a browser keeps about 16 WebGL contexts a page). Each plot's element
says its state (``data-state``: drawn, failed, released, ...); a plot that fails says so on the console.
Nothing on the page is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import json
import math
import struct
import time
from typing import Any

import pandas as pd

from .._version import __version__
from .data import CampaignView, DomainView, StudyView
from .figures import domain_figures, plottable

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:34px 0 10px;border-bottom:1px solid #d8dbe0;
padding-bottom:4px}h3{font-size:16px;margin:22px 0 8px}h4{font-size:14px;margin:0 0 6px}
.meta{color:#555;font-size:13px}.note{color:#8a5a00;background:#fff6e0;padding:6px 10px;border-radius:4px;
font-size:13px}
nav{font-size:13px;margin:10px 0}nav a{margin-right:14px}
table{border-collapse:collapse;font-size:12.5px;background:white;margin:6px 0 12px}
th,td{padding:4px 9px;border-bottom:1px solid #e4e6ea;text-align:right;white-space:nowrap}
th{background:#eef0f3;position:sticky;top:0}td.text,th.text{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
.scroll{overflow-x:auto;max-width:100%}
.plot{background:white;border:1px solid #e0e3e8;border-radius:6px;margin:10px 0;min-height:200px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
.card{background:white;border:1px solid #e0e3e8;border-radius:6px;padding:12px;overflow:hidden}
.card img{max-width:100%;height:auto;display:block;margin:6px 0}.card.wide{grid-column:1/-1}
.seq{font-family:"DejaVu Sans Mono",monospace;font-size:11px;white-space:normal;word-break:break-all;
text-align:left;min-width:260px}
"""

_SCRIPT = """
(function(){
  // SVG plots are drawn at once, one after the other. WebGL plots (3-D, scatter matrix, parallel coordinates)
  // are drawn when they come near the screen, and the ones far away are released again: a browser keeps only
  // about 16 WebGL contexts per page and silently blanks the oldest beyond that.
  var template = JSON.parse(document.getElementById('wb-template').textContent);
  var CONTEXTS = {'front-3d': 1, 'pairwise': 1, 'parallel': 3}, BUDGET = 12;
  var config = {responsive: true, displaylogo: false};
  var blocks = Array.prototype.slice.call(document.querySelectorAll('script.wb-figure'));
  var body = document.body, rendered = 0, live = [], queue = Promise.resolve();
  body.dataset.plotsTotal = blocks.length;
  body.dataset.plotsRendered = 0;
  function draw(block) {
    var target = document.getElementById(block.dataset.target), started = performance.now();
    target.dataset.state = 'drawing';
    var fig;
    try { fig = JSON.parse(block.textContent); } catch (err) {
      target.dataset.state = 'failed'; console.error('plot ' + block.dataset.target + ' failed: ' + err);
      return Promise.resolve();
    }
    fig.layout = fig.layout || {};
    fig.layout.template = template;
    return Plotly.newPlot(target, fig.data, fig.layout, config).then(function(){
      rendered += 1; body.dataset.plotsRendered = rendered;
      target.dataset.rendered = 'yes'; target.dataset.state = 'drawn';
      target.dataset.renderMs = Math.round(performance.now() - started);
    }, function(err){
      target.dataset.state = 'failed'; console.error('plot ' + block.dataset.target + ' failed: ' + err);
    });
  }
  function used() { return live.reduce(function(n, b){ return n + CONTEXTS[b.dataset.kind]; }, 0); }
  function release(keep) {
    for (var i = 0; i < live.length && used() + CONTEXTS[keep.dataset.kind] > BUDGET; ) {
      var target = document.getElementById(live[i].dataset.target);
      if (live[i] !== keep && target.dataset.visible !== 'yes') {
        Plotly.purge(target); target.dataset.state = 'released'; target.dataset.rendered = 'no';
        live.splice(i, 1);
      } else { i += 1; }
    }
  }
  function later(block) {
    var target = document.getElementById(block.dataset.target);
    target.dataset.state = 'queued';
    queue = queue.then(function(){
      if (target.dataset.visible !== 'yes') { target.dataset.state = 'waiting'; return; }
      release(block);
      live.push(block);
      return draw(block);
    });
  }
  var lazy = blocks.filter(function(b){ return CONTEXTS[b.dataset.kind]; });
  var eager = blocks.filter(function(b){ return !CONTEXTS[b.dataset.kind]; });
  var observer = new IntersectionObserver(function(entries){
    entries.forEach(function(entry){
      var block = document.querySelector('script.wb-figure[data-target="' + entry.target.id + '"]');
      entry.target.dataset.visible = entry.isIntersecting ? 'yes' : 'no';
      var state = entry.target.dataset.state;
      if (entry.isIntersecting && state === 'drawn') {  // seen again: the last to be released
        live = live.filter(function(b){ return b !== block; }).concat([block]);
      } else if (entry.isIntersecting && state !== 'queued' && state !== 'drawing') {
        later(block);
      }
    });
  }, {rootMargin: '300px 0px'});
  eager.reduce(function(chain, block){ return chain.then(function(){ return draw(block); }); }, Promise.resolve())
    .then(function(){ body.dataset.plotsFinished = 'yes'; lazy.forEach(function(b){
      observer.observe(document.getElementById(b.dataset.target)); }); });
})();
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (JSON has no NaN; plotly leaves a gap for null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: every '<' (only ever inside strings) written as \\u003c, so no
    '</script' or '<!--' in a name can end or confuse the element."""
    return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _cell(value: Any) -> tuple[str, str]:
    """(text, css class) of a table cell: numbers to 4-5 significant digits, missing values blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), "text"
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return f"{int(value):,}", ""
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        v = float(value)
        return (f"{v:.5g}" if math.isfinite(v) else str(v)), ""
    text = str(value)
    return text, "seq" if len(text) > 40 else "text"


def table_html(frame: pd.DataFrame, table_id: str | None = None) -> str:
    """An HTML table of ``frame`` (index dropped), numbers right-aligned."""
    head = "".join(f'<th class="{"" if pd.api.types.is_numeric_dtype(frame[c]) else "text"}">{_esc(c)}</th>'
                   for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text, cls = _cell(value)
            cells.append(f'<td class="{cls}">{_esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{_esc(table_id)}"' if table_id else ""
    return (f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _compare_table(compare: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({"domain": compare["domain"], "optimizer": compare["optimizer"]})
    shown["hypervolume (mean ± std)"] = [f"{m:.5g} ± {s:.3g}" if s == s else f"{m:.5g}"
                                         for m, s in zip(compare["hv_mean"], compare["hv_std"])]
    shown["seeds"] = compare["seeds"].astype(int)
    shown["evaluations (mean)"] = compare["evaluations"].round().astype(int)
    shown["reference point"] = compare["ref"]
    return shown


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "x"


class _Figures:
    """Collects the figure blocks of a page and hands out element ids."""

    def __init__(self) -> None:
        self.blocks: list[str] = []

    def add(self, fig: dict[str, Any], kind: str, domain: str) -> str:
        target = f"plot-{len(self.blocks)}-{_slug(domain)}-{kind}"
        self.blocks.append(f'<script type="application/json" class="wb-figure" data-target="{target}" '
                           f'data-kind="{kind}" data-domain="{_esc(domain)}">{_script_json(fig)}</script>')
        height = int(fig.get("layout", {}).get("height", 450))
        return f'<div class="plot" id="{target}" data-kind="{kind}" style="height:{height}px"></div>'


def _study_card(view: StudyView, domain: DomainView) -> str:
    parts = [f"<h4>{_esc(view.label)} · seed {view.seed}</h4>",
             f'<div class="meta">{_esc(view.name)} · {len(view.results):,} evaluations · '
             f'{int(view.front.sum()):,} non-dominated</div>']
    wide = False
    if view.picture is not None:
        data = base64.b64encode(view.picture).decode("ascii")
        width, height = struct.unpack(">II", view.picture[16:24])  # from the PNG header
        wide = width > 2.2 * height
        parts.append(f'<img alt="best designs of {_esc(view.name)}" width="{width}" height="{height}" '
                     f'src="data:image/png;base64,{data}">')
    elif view.picture_note and view.best_table is not None:
        parts.append(f'<div class="meta">{_esc(view.picture_note)}</div>')
    if view.best_table is not None:
        table = view.best_table
        hidden = table.attrs.get("hidden", 0)
        parts.append(table_html(table))
        if hidden:
            parts.append(f'<div class="meta">{hidden} more parameters: <code>workbench export</code> has them all'
                         "</div>")
        if view.picture is not None:
            parts.append('<div class="meta">pictures in the order of the table</div>')
    else:
        parts.append('<div class="meta">no feasible design yet</div>')
    return f'<div class="card{" wide" if wide else ""}">' + "".join(parts) + "</div>"


def _domain_section(domain: DomainView, view: CampaignView, figs: _Figures) -> str:
    k = len(domain.objectives)
    objectives = ", ".join(f"{o.name} ({'min' if o.direction == 'minimize' else 'max'})" for o in domain.objectives)
    out = [f'<section id="domain-{_slug(domain.name)}"><h2>{_esc(domain.name)}</h2>',
           f'<div class="meta">{len(domain.studies)} studies · {k} objective{"s" * (k != 1)}: {_esc(objectives)}'
           + (f" · reference point {_esc(', '.join(f'{v:.4g}' for v in domain.ref))}"
              if domain.ref is not None else "")
           + "</div>"]
    for kind, fig in domain_figures(domain, view.traces):
        out.append(figs.add(fig, kind, domain.name))
    if not plottable(domain):
        failed = sum(v.rows.n_failed for v in domain.studies)
        out.append(f'<div class="note">Nothing to plot: none of the {failed:,} evaluations of this domain has values '
                   "(every one failed; the studies table and <code>workbench export</code> have their errors).</div>")
    k_best = max((len(v.best) for v in domain.studies), default=0)
    out.append("<h3>Best designs per study</h3>")
    if k_best:
        out.append(f'<div class="meta">up to {k_best} per study: '
                   + ("the best feasible values" if k == 1 else "non-dominated designs spread over the front")
                   + "</div>")
    if domain.picture_note:
        out.append(f'<div class="meta">No pictures: {_esc(domain.picture_note)}.</div>')
    out.append('<div class="cards">' + "".join(_study_card(v, domain) for v in domain.studies) + "</div></section>")
    return "".join(out)


def _plotly_assets() -> tuple[str, dict[str, Any]]:
    """plotly.js (minified, inline) and the shared template."""
    try:
        import plotly.io as pio
        from plotly.offline import get_plotlyjs
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the HTML report needs plotly: pip install 'design-workbench[report]'") from None
    return get_plotlyjs(), json.loads(pio.json.to_json_plotly(pio.templates["plotly_white"].to_plotly_json()))


def render_page(view: CampaignView) -> str:
    """The whole HTML document of campaign ``view``."""
    plotly_js, template = _plotly_assets()
    figs = _Figures()
    sections = [_domain_section(d, view, figs) for d in view.domains]
    studies = view.studies.drop(columns=["domain"]) if len(view.domains) == 1 else view.studies
    n_evals = int(view.studies["evaluations"].sum())
    nav = "".join(f'<a href="#domain-{_slug(d.name)}">{_esc(d.name)}</a>' for d in view.domains)
    compare = table_html(_compare_table(view.compare), "compare-table") if view.compare is not None else ""
    if view.note:
        compare += f'<div class="note">{_esc(view.note)}</div>'
    generated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.created))
    body = (f"<main><h1>Campaign {_esc(view.name)}</h1>"
            f'<div class="meta">{len(view.studies)} studies · {n_evals:,} evaluations · storage {_esc(view.storage)}'
            f" · written {generated} by design-workbench {_esc(__version__)}</div>"
            f"<nav><a href=\"#compare\">compare</a><a href=\"#studies\">studies</a>{nav}</nav>"
            f'<section id="compare"><h2>Hypervolume by optimizer</h2>'
            f'<div class="meta">final hypervolume of each study, mean ± std over seeds, against one reference point '
            f"per domain</div>{compare}</section>"
            f'<section id="studies"><h2>Studies</h2>{table_html(studies, "studies-table")}</section>'
            + "".join(sections) + "</main>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(view.name)}: design-workbench report</title><style>{_STYLE}</style>"
            f"<script>{plotly_js}</script></head><body>{body}"
            f'<script type="application/json" id="wb-template">{_script_json(template)}</script>'
            + "".join(figs.blocks) + f"<script>{_SCRIPT}</script></body></html>\n")
