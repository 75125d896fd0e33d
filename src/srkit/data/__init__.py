"""Datasets: benchmark sets (and, later, training folders and patch samplers)."""

from srkit.data.benchmark import BenchmarkSet, available_sets, find_set, modcrop

__all__ = ["BenchmarkSet", "available_sets", "find_set", "modcrop"]
