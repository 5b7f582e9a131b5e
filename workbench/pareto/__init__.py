"""Pareto analysis: sorting, crowding, feasibility-first ranking and quality indicators."""

from .indicators import hypervolume, igd, igd_plus
from .sorting import (constrained_rank, crowding_by_front, crowding_distance, is_nondominated, nondominated_rank,
                      nondominated_rank_torch, total_violation)

__all__ = ["hypervolume", "igd", "igd_plus", "constrained_rank", "crowding_by_front", "crowding_distance",
           "is_nondominated", "nondominated_rank", "nondominated_rank_torch", "total_violation"]
