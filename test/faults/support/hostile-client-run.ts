import { Pop3Client } from "../../../shared/adapters/pop3/pop3-client";
import { CLIENT_BOUNDS, type ClientOp } from "./hostile-scripts";
import { withGuard } from "./process-guards";

/** How one client call ended. */
export type CallOutcome =
  | { readonly call: string; readonly kind: "resolved" }
  | { readonly call: string; readonly kind: "rejected"; readonly error: unknown }
  | { readonly call: string; readonly kind: "hung" };

/** Everything a hostile run produced, for the property to judge. */
export interface RunReport {
  readonly outcomes: CallOutcome[];
  /** Most bytes one RETR stream handed to its reader. */
  readonly largestRetr: number;
}

/**
 * Far beyond any deadline the client was given (connect + connection budget), so only a real
 * hang trips it, even on a loaded machine; the property fails on it instead of hanging.
 */
export const OUTER_GUARD_MS = CLIENT_BOUNDS.commandTimeoutMs + CLIENT_BOUNDS.connectionDeadlineMs + 4_000;

async function settle(call: string, work: () => Promise<unknown>): Promise<CallOutcome> {
  return withGuard<CallOutcome>(
    work().then(
      (): CallOutcome => ({ call, kind: "resolved" }),
      (error: unknown): CallOutcome => ({ call, kind: "rejected", error }),
    ),
    OUTER_GUARD_MS,
    () => ({ call, kind: "hung" }),
  );
}

/** Connects to the hostile server on `port` and plays `plan`; every call is guarded. */
export async function runClientPlan(port: number, plan: readonly ClientOp[][]): Promise<RunReport> {
  const outcomes: CallOutcome[] = [];
  let largestRetr = 0;
  let client: Pop3Client | undefined;
  const connected = await settle("connect", async () => {
    client = await Pop3Client.connect({
      host: "127.0.0.1",
      port,
      tls: "none",
      allowPlaintext: true,
      commandTimeoutMs: CLIENT_BOUNDS.commandTimeoutMs,
      connectionDeadlineMs: CLIENT_BOUNDS.connectionDeadlineMs,
      maxLineBytes: CLIENT_BOUNDS.maxLineBytes,
      maxListingBytes: CLIENT_BOUNDS.maxListingBytes,
    });
  });
  outcomes.push(connected);
  const session = client;
  if (session === undefined) return { outcomes, largestRetr };
  const readRetr = async (abandon: boolean): Promise<void> => {
    const stream = session.retrieve(1, { maxBytes: CLIENT_BOUNDS.retrMaxBytes });
    let received = 0;
    for await (const chunk of stream) {
      received += (chunk as Buffer).length;
      largestRetr = Math.max(largestRetr, received);
      if (abandon) break;
    }
  };
  const calls: Record<ClientOp, () => Promise<unknown>> = {
    capa: () => session.capabilities(),
    "login-auto": () => session.login("alice", "pw", "auto"),
    "login-user": () => session.login("alice", "pw", "user"),
    "login-plain": () => session.login("alice", "pw", "plain"),
    "login-apop": () => session.login("alice", "pw", "apop"),
    stat: () => session.stat(),
    list: () => session.list(),
    uidl: () => session.uidl(),
    top: () => session.top(1, 2, { maxBytes: CLIENT_BOUNDS.topMaxBytes }),
    retr: () => readRetr(false),
    "retr-abandon": () => readRetr(true),
    dele: () => session.dele(1),
    rset: () => session.rset(),
    noop: () => session.noop(),
    quit: () => session.quit(),
  };
  try {
    for (const step of plan) {
      outcomes.push(...(await Promise.all(step.map((op) => settle(op, calls[op])))));
      if (outcomes.some((o) => o.kind === "hung")) break;
    }
  } finally {
    session.destroy();
  }
  return { outcomes, largestRetr };
}
