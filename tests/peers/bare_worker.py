"""A bare Temporal Python SDK worker: the peer `cutover-worker` is measured against
(`cargo bench -p cutover-tests --bench peers`). `BareWorkflow(steps)` runs `steps` no-op
activities in a row, with the SDK's defaults and nothing else.

    python3 tests/peers/bare_worker.py ADDRESS TASK_QUEUE
"""

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


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


async def main(address: str, queue: str) -> None:
    client = await Client.connect(address)
    # The same slot counts the other peers get (100 workflow tasks, 100 activities).
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[BareWorkflow],
        activities=[noop],
        max_concurrent_workflow_tasks=100,
        max_concurrent_activities=100,
    )
    await worker.run()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: bare_worker.py ADDRESS TASK_QUEUE")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
