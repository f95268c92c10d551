"""The run pipeline's pieces that do not depend on the runner itself.

:mod:`tunecheck.pipeline.state` holds what a run produced (loaded tasks, each
contender's outputs); :mod:`tunecheck.pipeline.scoring` turns outputs into the typed
results of :mod:`tunecheck.results`. This package's ``__init__`` imports nothing, so
each module can be imported on its own.
"""
