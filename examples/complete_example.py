"""The guide's Complete Example, runnable: only the imports differ from the guide.

The guide leaves ``transcribe_audio``, ``generate_response`` and
``synthesize_speech`` to the reader; they are stubbed below with realistic
latencies so the example runs as it stands:

    python examples/complete_example.py      # serves /monitoring on port 8000

``handle_voice_call`` is what a telephony webhook or media-stream handler
calls for each call.
"""

import asyncio
import random
import time

from fastapi import FastAPI

from callwatch.alerting import check_and_alert
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
from callwatch.monitoring import (
    get_health,  # noqa: F401 - imported by the guide's example
    get_metrics,
    record_call_end,
    record_call_start,
    record_error,
)
from callwatch.routes import router as monitoring_router


async def transcribe_audio() -> str:
    """Speech to text: ~200 ms, sometimes much longer."""
    await asyncio.sleep(random.lognormvariate(-1.6, 0.3))
    return "I would like to check my account balance"


async def generate_response(text: str) -> str:
    """The language model's answer to ``text``: ~300 ms."""
    await asyncio.sleep(random.lognormvariate(-1.2, 0.4))
    return f"Of course. You asked: {text!r}. Your balance is $42.17."


async def synthesize_speech(response: str) -> bytes:
    """Text to speech: ~100 ms to the first audio."""
    await asyncio.sleep(random.lognormvariate(-2.3, 0.25))
    return response.encode()


# --- The guide's Complete Example, as written ----------------------------------------------

app = FastAPI()
app.include_router(monitoring_router)

async def handle_voice_call(call_id: str, caller: str):
    """Complete example of production logging and monitoring"""

    # Set call context
    set_call_id(call_id)

    # Record call start
    record_call_start(call_id)
    log.info("Call started", extra={"caller": caller})

    start_time = time.time()

    try:
        # Process with performance tracking
        with perf_timer("stt_transcription"):
            text = await transcribe_audio()

        with perf_timer("llm_generation"):
            response = await generate_response(text)

        with perf_timer("tts_synthesis"):
            audio = await synthesize_speech(response)

        # Log success
        duration = time.time() - start_time
        log.info("Call completed successfully", extra={
            "duration_sec": duration,
            "response_length": len(response)
        })

        # Audit log
        audit_log("Call completed",
            call_id=call_id,
            caller=caller,
            duration_sec=duration,
            success=True
        )

        # Record metrics
        record_call_end(call_id, duration, success=True)

        return audio

    except Exception as e:
        # Log error
        log.exception("Call failed")

        # Record error
        record_error(
            error_type=type(e).__name__,
            error_message=str(e),
            context={"call_id": call_id, "caller": caller}
        )

        # Record failed call
        duration = time.time() - start_time
        record_call_end(call_id, duration, success=False)

        raise

    finally:
        # Clear context
        clear_context()

        # Check metrics and alert if needed
        metrics = get_metrics()
        await check_and_alert(metrics)

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="0.0.0.0", port=8000)
