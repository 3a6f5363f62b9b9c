import type {
  PollChainItem,
  PollChains,
  PollEnd,
  PollMessage,
  PollQueue,
} from "../../shared/ports/poll-chains";

/** `PollChains` in a Map, with the same conditions as `DynamoDbPollChains` (the contract test runs both). */
export class InMemoryPollChains implements PollChains {
  readonly items = new Map<string, PollChainItem>();

  async list(tenant: string): Promise<PollChainItem[]> {
    return [...this.items.entries()].filter(([key]) => key.startsWith(`${tenant}#`)).map(([, item]) => item);
  }

  async start(
    tenant: string,
    mailboxId: string,
    chain: string,
    now: number,
    seen: PollChainItem | undefined,
    dueAt: number = now,
  ): Promise<boolean> {
    const key = `${tenant}#${mailboxId}`;
    const stored = this.items.get(key);
    if (seen === undefined ? stored !== undefined : !sameLiveState(stored, seen)) return false;
    const { pollUntil: _dropped, ...kept } = stored ?? ({} as Partial<PollChainItem>);
    this.items.set(key, {
      ...kept,
      mailboxId,
      chain,
      seq: 0,
      nextPollAt: dueAt,
      firstStartedAt: stored?.firstStartedAt ?? now,
    });
    return true;
  }

  async take(tenant: string, message: PollMessage, now: number, pollUntil: number) {
    const key = `${tenant}#${message.mailboxId}`;
    const stored = this.items.get(key);
    if (stored === undefined || stored.chain !== message.chain || stored.seq !== message.seq)
      return undefined;
    if (stored.pollUntil !== undefined && stored.pollUntil >= now) return undefined;
    const taken = { ...stored, pollUntil };
    this.items.set(key, taken);
    return taken;
  }

  async finish(tenant: string, message: PollMessage, pollUntil: number, end: PollEnd): Promise<boolean> {
    const key = `${tenant}#${message.mailboxId}`;
    const stored = this.items.get(key);
    if (
      stored === undefined ||
      stored.chain !== message.chain ||
      stored.seq !== message.seq ||
      stored.pollUntil !== pollUntil
    ) {
      return false;
    }
    const { pollUntil: _done, lastFailure: _f, lastFailureCode: _c, ...rest } = stored;
    this.items.set(key, {
      ...rest,
      seq: stored.seq + 1,
      nextPollAt: end.nextPollAt,
      lastPolledAt: end.at,
      ...(end.failure === undefined
        ? { lastSucceededAt: end.at }
        : {
            lastFailure: end.failure.kind,
            ...(end.failure.code === undefined ? {} : { lastFailureCode: end.failure.code }),
          }),
    });
    return true;
  }

  async amend(
    tenant: string,
    message: PollMessage,
    recorded: PollEnd,
    end: PollEnd,
    succeededBefore: number | undefined,
  ): Promise<boolean> {
    const key = `${tenant}#${message.mailboxId}`;
    const stored = this.items.get(key);
    if (
      stored === undefined ||
      stored.chain !== message.chain ||
      stored.seq !== message.seq + 1 ||
      stored.pollUntil !== undefined ||
      stored.lastPolledAt !== recorded.at
    ) {
      return false;
    }
    const { lastFailure: _f, lastFailureCode: _c, lastSucceededAt: _s, ...rest } = stored;
    this.items.set(key, {
      ...rest,
      nextPollAt: end.nextPollAt,
      lastPolledAt: end.at,
      ...(end.failure === undefined
        ? { lastSucceededAt: end.at }
        : {
            ...(succeededBefore === undefined ? {} : { lastSucceededAt: succeededBefore }),
            lastFailure: end.failure.kind,
            ...(end.failure.code === undefined ? {} : { lastFailureCode: end.failure.code }),
          }),
    });
    return true;
  }

  async heldUntil(tenant: string, mailboxId: string): Promise<number | undefined> {
    return this.items.get(`${tenant}#${mailboxId}`)?.pollUntil;
  }
}

function sameLiveState(stored: PollChainItem | undefined, seen: PollChainItem): boolean {
  return (
    stored !== undefined &&
    stored.chain === seen.chain &&
    stored.seq === seen.seq &&
    stored.pollUntil === seen.pollUntil
  );
}

/** A poll queue that keeps what was sent, with the delay, for a test to deliver when it likes. */
export class RecordingPollQueue implements PollQueue {
  readonly sent: { message: PollMessage; delaySeconds: number }[] = [];
  failNext: Error | undefined;

  async send(message: PollMessage, delaySeconds: number): Promise<void> {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
    this.sent.push({ message, delaySeconds });
  }

  /** Removes and returns the oldest message sent. */
  next(): { message: PollMessage; delaySeconds: number } {
    const first = this.sent.shift();
    if (first === undefined) throw new Error("no poll message was sent");
    return first;
  }
}
