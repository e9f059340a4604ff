"""Adapters that record a voice framework's calls with no code beyond one line.

``callwatch.integrations.pipecat`` (``callwatch[pipecat]``),
``callwatch.integrations.livekit`` (``callwatch[livekit]``) and
``callwatch.integrations.loguru``. Each imports its framework only when used.
"""
