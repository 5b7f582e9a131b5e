"""Where studies and evaluations run beyond this process: Ray tasks for a campaign's studies, Ray actors
for one study's evaluation chunks. Ray is optional and imported only when one of these is used
(``pip install 'design-workbench[ray]'``)."""

from .ray_campaign import run_on_ray
from .ray_evaluation import EvaluationActor, RayEvaluation, spread
from .ray_session import INSTALL_HINT, connect, import_ray, probe

__all__ = ["INSTALL_HINT", "EvaluationActor", "RayEvaluation", "connect", "import_ray", "probe", "run_on_ray", "spread"]
