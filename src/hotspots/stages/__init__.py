"""The pipeline: the only code that knows the run context, the settings and the output folder.

:func:`prepare` reads the data home once into a :class:`Context`; each stage in
:data:`STAGES` (``counts``, ``outliers``, ``hotspots``, ``evaluate``) calls the
analysis packages with plain data, writes their tables through ``ctx.out`` and
hands the results to the renderers; :func:`run` schedules them and
:func:`write_manifest` records inputs, parameters, outputs and row accounting.
"""

from hotspots.stages.context import Context, Progress, prepare
from hotspots.stages.run import STAGES, run, write_manifest

__all__ = ["STAGES", "Context", "Progress", "prepare", "run", "write_manifest"]
