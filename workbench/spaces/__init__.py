"""Design spaces: mixed vectors, sequences and dense tensors."""

from typing import Any

from .base import Space
from .mixed import MixedSpace
from .sequence import SequenceSpace
from .tensor import TensorSpace
from .variables import Binary, Categorical, Integer, Real, Variable

_SPACES = {cls.kind: cls for cls in (MixedSpace, SequenceSpace, TensorSpace)}


def space_from_spec(spec: dict[str, Any]) -> Space:
    """Rebuild any space from the JSON spec written by its ``to_spec``."""
    kind = spec.get("kind")
    if kind not in _SPACES:
        raise ValueError(f"unknown space kind {kind!r}; expected one of {sorted(_SPACES)}")
    return _SPACES[kind].from_spec(spec)


__all__ = ["Space", "MixedSpace", "SequenceSpace", "TensorSpace", "Real", "Integer", "Categorical", "Binary",
           "Variable", "space_from_spec"]
