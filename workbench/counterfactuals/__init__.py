"""Multi-objective counterfactuals for design (MCD, Regenwetter et al.), generic over MixedSpace domains.

- ``targets``: what the user asks of the predicted properties, as constraint violations;
- ``distances``: Gower distance, changed features, k-NN manifold distance, chunked on the device;
- ``problem``: :class:`CounterfactualDomain`, the search as a Domain any optimizer can run;
- ``select``: a few diverse, high-quality designs from every feasible one found;
- ``api``: :func:`counterfactuals`, which runs the search (MCD by default) and reports.
"""

from .api import counterfactuals
from .distances import GowerMetric
from .problem import CounterfactualDomain
from .select import select_diverse
from .targets import Target, parse_targets

__all__ = ["counterfactuals", "CounterfactualDomain", "GowerMetric", "Target", "parse_targets", "select_diverse"]
