"""Where the time between a workflow's steps goes: runs a bare 10-activity workflow back to back
(or spaced) on a Temporal server and prints the median gap between consecutive history events.

    python3 tests/peers/step_gaps.py ADDRESS [SPACING_SECONDS]

With a dev server's defaults, run back to back, WORKFLOW_TASK_SCHEDULED -> WORKFLOW_TASK_STARTED
takes ~30 ms (the history service's transfer queue is read at most 20 times a second per shard);
with `--dynamic-config-value history.transferProcessorMaxPollRPS=1000` it takes ~3 ms. See
BENCHMARKS.md ("The 50 ms quantum"). Needs `pip install temporalio`.
"""

import asyncio
import statistics
import sys
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

RUNS = 12
WARMUP = 2


@activity.defn(name="noop")
async def noop() -> None:
    return None


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await workflow.execute_activity(
                noop, start_to_close_timeout=timedelta(seconds=30)
            )


def seconds(event) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


async def main(address: str, spacing: float) -> None:
    client = await Client.connect(address)
    queue = "gaps-" + uuid.uuid4().hex[:8]
    gaps: dict[str, list[float]] = {}
    walls = []
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BareWorkflow],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        for i in range(RUNS):
            started = time.monotonic()
            handle = await client.start_workflow(
                BareWorkflow.run, 10, id=f"{queue}-{i}", task_queue=queue
            )
            await handle.result()
            walls.append((time.monotonic() - started) * 1000)
            if i >= WARMUP:
                previous = None
                async for event in handle.fetch_history_events():
                    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
                    if previous is not None:
                        key = f"{previous[0]} -> {name}"
                        gaps.setdefault(key, []).append((seconds(event) - previous[1]) * 1000)
                    previous = (name, seconds(event))
            if spacing:
                await asyncio.sleep(spacing)
    print(
        f"spacing {spacing:g} s: 10-step run, median {statistics.median(walls[WARMUP:]):.0f} ms"
    )
    for key, values in sorted(gaps.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {key:62s} median {statistics.median(values):6.1f} ms  (n={len(values)})")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: step_gaps.py ADDRESS [SPACING_SECONDS]")
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 0.0))
