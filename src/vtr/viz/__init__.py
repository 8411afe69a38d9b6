"""Figures of runs and models: training curves, retrieval-case grids, Grad-CAM and cross-attention maps, an HTML report.

Every figure is a ``matplotlib.figure.Figure`` made without pyplot (so no display and no global backend is ever
touched) and written as a PNG atomically. Nothing else in vtr imports this package; it imports the library.

- :mod:`vtr.viz.curves`: loss terms, validation recall and learning rate from a run's ``log.jsonl``.
- :mod:`vtr.viz.cases`: for a few queries, the top-k videos (middle frames) and where the right one ranked.
- :mod:`vtr.viz.gradcam`: which video tokens raised the global score, by Grad-CAM (``vtr explain``).
- :mod:`vtr.viz.attention`: where a fine-grained head's query looks in a video (``vtr explain``).
- :mod:`vtr.viz.report`: one HTML page with all of the above for a run (``vtr report``).
"""
