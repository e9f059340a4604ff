"""The guide's Quick Start (Basic Usage), runnable: only the imports differ from the guide.

    LOG_DIR=./logs python examples/quick_start.py
    callwatch trace ast-123-456 --log-dir ./logs

``process_audio`` is the reader's own code in the guide; it is stubbed here.
"""

import asyncio

from callwatch.logger import log, perf_timer, set_call_id
from callwatch.monitoring import record_call_end, record_call_start


async def process_audio() -> bytes:
    """Stands in for the service's own audio pipeline."""
    await asyncio.sleep(0.25)
    return b"\x00" * 3200


# --- The guide's Basic Usage, as written ---------------------------------------------------

async def handle_call(call_id: str):
    # Set call ID for tracking
    set_call_id(call_id)

    # Record call start
    record_call_start(call_id)

    # Your code with performance tracking
    with perf_timer("process_audio"):
        result = await process_audio()  # noqa: F841 - the guide keeps the result

    log.info("Call processed successfully")

    # Record call end
    record_call_end(call_id, duration_sec=10.5, success=True)


if __name__ == "__main__":
    asyncio.run(handle_call("ast-123-456"))
