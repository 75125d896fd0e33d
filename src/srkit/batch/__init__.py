"""Batch upscaling beyond one machine: `srkit batch --engine ray` (Ray Data; extra ``srkit[ray]``), see
:mod:`srkit.batch.ray_batch`. On one machine `srkit upscale` does the same without Ray."""
