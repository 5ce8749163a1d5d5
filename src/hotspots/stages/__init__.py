"""TODO"""
from hotspots.stages._pipeline import *  # noqa: F401,F403  (interim)
from hotspots.stages._pipeline import Context, Progress, STAGES, prepare, run, write_manifest, stage_hotspots  # noqa: F401
