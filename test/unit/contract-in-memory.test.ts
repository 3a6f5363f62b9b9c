import { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import { describeArchiveStoreContract } from "../contract/archive-store-contract";
import { describeLedgerContract } from "../contract/ledger-contract";
import { describeSessionLeasesContract } from "../contract/session-leases-contract";
import { describeWorkQueueContract } from "../contract/work-queue-contract";
import { InMemoryArchiveStore } from "../fakes/in-memory-archive-store";
import { TestClock } from "../fakes/in-memory-clock";
import { InMemoryLedger } from "../fakes/in-memory-ledger";
import { InMemorySessionLeases } from "../fakes/in-memory-session-leases";

// The in-memory doubles the core's unit tests rely on must behave like the AWS adapters: the same
// contract suites run against both (the AWS side in test/integration/aws-*.test.ts).

describeLedgerContract("InMemoryLedger", () => new InMemoryLedger());

describeSessionLeasesContract(
  "InMemorySessionLeases",
  (now) => new InMemorySessionLeases({ now, sleep: async () => {} }),
);

describeArchiveStoreContract("InMemoryArchiveStore", () => new InMemoryArchiveStore());

describeWorkQueueContract("MemoryWorkQueue", () => {
  const clock = new TestClock();
  const queue = new MemoryWorkQueue(clock);
  return {
    queue,
    // Nothing runs on real time here: every visible job is there at once, so no wait is needed.
    receive: async () => queue.take(Number.MAX_SAFE_INTEGER),
    elapse: async (seconds) => clock.advance(seconds * 1000),
  };
});
