import {
  DEFAULT_LIST_POLICY,
  type ListDeps,
  listNewMessages,
} from "../../../../shared/core/list-new-messages";
import type { MailboxKey } from "../../../../shared/core/model";
import type { Ledger } from "../../../../shared/ports/ledger";
import { CountingLedger, InMemoryLedger } from "../../../fakes/in-memory-ledger";
import { Harness, mailboxConfig, TENANT } from "./harness";

/** A mailbox with many messages kept on the server, over any ledger (issue 14 item 3). */
export interface LargeMailbox {
  readonly h: Harness;
  readonly ledger: CountingLedger;
  readonly deps: ListDeps;
  /** Jobs the lister sent so far (counted, not kept: a queue of 200,000 jobs is not the subject). */
  readonly sent: { jobs: number };
  poll(): ReturnType<typeof listNewMessages>;
}

/** A mailbox whose server keeps `count` messages, all copied and retained, on `store`. */
export async function largeMailbox(store: Ledger, count: number): Promise<LargeMailbox> {
  const h = new Harness(mailboxConfig({ deleteAfter: "never" }));
  const ledger = new CountingLedger(store);
  const sent = { jobs: 0 };
  const queue = {
    enqueue: async (jobs: readonly unknown[]) => {
      sent.jobs += jobs.length;
    },
  };
  const deps: ListDeps = { ...h.deps, ledger, queue };
  const poll = () => listNewMessages(deps, TENANT, h.mailbox);
  const tiny = new Uint8Array(Buffer.from("Subject: x\r\n\r\nhi\r\n"));
  for (let i = 0; i < count; i++) h.pop3.add(tiny, `kept-${i}`);
  await poll();
  const listed = await store.listByState(h.key, ["listed"]);
  const retained = { importedAt: h.clock.now(), archivedSize: 20, sha256: "0".repeat(64) };
  if (store.transitionEach !== undefined) {
    await store.transitionEach(listed, ["listed"], "retained", retained);
  } else {
    for (const entry of listed) await store.transition(entry, ["listed"], "retained", retained);
  }
  sent.jobs = 0;
  h.clock.advance(DEFAULT_LIST_POLICY.stuckAfterMs + 1000);
  await poll(); // learns the retained states once
  return { h, ledger, deps, sent, poll };
}

/** The byte size of every stored snapshot shard. */
export async function shardSizes(store: Ledger, h: Harness): Promise<number[]> {
  return [...(await store.getSnapshotShards(h.key)).values()].map((s) => s.body.byteLength);
}

/**
 * Message entries in memory, the snapshot on another ledger (DynamoDB on dynalite): 200,000
 * conditional puts to a stand-in would take minutes, and an idle poll reads only the snapshot.
 */
export class SnapshotsElsewhere extends InMemoryLedger {
  constructor(
    private readonly shardStore: Pick<Ledger, "getSnapshot" | "getSnapshotShards" | "putSnapshot">,
  ) {
    super();
  }
  override getSnapshot(mailbox: MailboxKey) {
    return this.shardStore.getSnapshot(mailbox);
  }
  override getSnapshotShards(mailbox: MailboxKey) {
    return this.shardStore.getSnapshotShards(mailbox);
  }
  override putSnapshot(mailbox: MailboxKey, body: Uint8Array, expected: number | undefined, shard?: number) {
    return this.shardStore.putSnapshot(mailbox, body, expected, shard);
  }
}
