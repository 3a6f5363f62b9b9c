import { randomUUID } from "node:crypto";
import type { MailboxConfig } from "../config/tenant-config";
import type { Pop3Session } from "../ports/pop3-source";
import type { BusyReason } from "../ports/telemetry";
import { CredentialsError, MailboxBusyError, Pop2GmailError } from "./errors";
import type { MailboxKey, ServerMessage } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

/** Default lease: longer than any Lambda invocation (15 min), so a live holder never loses it. */
export const DEFAULT_SESSION_LEASE_MS = 16 * 60 * 1000;

/**
 * One open POP3 session as the use cases see it. `withMailboxSession` owns QUIT; a use case that
 * sent DELEs registers `afterQuit` to record the outcome, because only QUIT's `+OK` makes them
 * take effect (RFC 1939 §6).
 */
export interface SessionScope {
  readonly mailbox: MailboxKey;
  readonly config: MailboxConfig;
  readonly session: Pop3Session;
  /** UIDL + LIST of this session, read once: message numbers are valid only here (RFC 1939 §7). */
  messages(): Promise<readonly ServerMessage[]>;
  /** The server message with this UIDL in this session, if it is still there. */
  find(uidl: string): Promise<ServerMessage | undefined>;
  /** Runs after QUIT with whether it committed; not run when the session was aborted. */
  afterQuit(action: (committed: boolean) => Promise<void>): void;
  /** Marks the connection unusable (a RETR failed half-way): later work in it is skipped. */
  markBroken(): void;
  /** True once `markBroken` was called. */
  readonly broken: boolean;
}

/** The outcome of a session: the function's value, or "busy" when the mailbox was not available. */
export type SessionOutcome<T> =
  | { readonly kind: "done"; readonly value: T; readonly committed: boolean }
  | { readonly kind: "busy"; readonly reason: BusyReason };

export type SessionDeps = Pick<PipelineDeps, "pop3" | "leases" | "telemetry" | "holderId">;

/**
 * Runs `fn` inside one POP3 session of `config`, holding one of the mailbox's `pop3.maxSessions`
 * lease slots. No free slot, or a server answering `[IN-USE]`/`[LOGIN-DELAY]` (RFC 2449 §8), is
 * the outcome `busy`, never an error of any message. On success it QUITs and runs the
 * `afterQuit` actions; if `fn` throws, it drops the connection without QUIT (so no DELE takes
 * effect), releases the lease and rethrows. `CredentialsError` is reported once, as
 * `credentials-broken`, and rethrown.
 */
export async function withMailboxSession<T>(
  deps: SessionDeps,
  mailbox: MailboxKey,
  config: MailboxConfig,
  fn: (scope: SessionScope) => Promise<T>,
  options: { leaseMs?: number } = {},
): Promise<SessionOutcome<T>> {
  const lease = await deps.leases.acquire(
    mailbox,
    config.pop3.maxSessions,
    deps.holderId ?? randomUUID(),
    options.leaseMs ?? DEFAULT_SESSION_LEASE_MS,
  );
  if (lease === undefined) return busy(deps, mailbox, "no-lease");
  try {
    let session: Pop3Session;
    try {
      session = await deps.pop3.open(config);
    } catch (error) {
      if (error instanceof MailboxBusyError) return busy(deps, mailbox, error.responseCode);
      throw error;
    }
    const actions: ((committed: boolean) => Promise<void>)[] = [];
    const scope = createScope(mailbox, config, session, actions);
    let value: T;
    try {
      value = await fn(scope);
    } catch (error) {
      session.abort();
      throw error;
    }
    const committed = await quitSafely(session);
    for (const action of actions) await action(committed);
    return { kind: "done", value, committed };
  } catch (error) {
    if (error instanceof MailboxBusyError) return busy(deps, mailbox, error.responseCode);
    if (error instanceof CredentialsError) {
      deps.telemetry.record({
        type: "credentials-broken",
        ...mailbox,
        service: error.service,
        code: error.code,
      });
    }
    throw error;
  } finally {
    await deps.leases.release(mailbox, lease);
  }
}

function busy(deps: SessionDeps, mailbox: MailboxKey, reason: BusyReason): SessionOutcome<never> {
  deps.telemetry.record({ type: "busy", ...mailbox, reason });
  return { kind: "busy", reason };
}

/**
 * A QUIT that fails with a protocol or network error is a QUIT that did not commit: nothing was
 * deleted (RFC 1939 §6), nothing to throw about. Anything else is a bug and surfaces.
 */
async function quitSafely(session: Pop3Session): Promise<boolean> {
  try {
    return (await session.quit()).committed;
  } catch (error) {
    session.abort();
    if (error instanceof Pop2GmailError) return false;
    throw error;
  }
}

function createScope(
  mailbox: MailboxKey,
  config: MailboxConfig,
  session: Pop3Session,
  actions: ((committed: boolean) => Promise<void>)[],
): SessionScope {
  let listing: Promise<readonly ServerMessage[]> | undefined;
  let byUidl: Map<string, ServerMessage> | undefined;
  let broken = false;
  const messages = (): Promise<readonly ServerMessage[]> => {
    listing ??= session.listMessages();
    return listing;
  };
  return {
    mailbox,
    config,
    session,
    messages,
    async find(uidl) {
      byUidl ??= new Map((await messages()).map((m) => [m.uidl, m]));
      return byUidl.get(uidl);
    },
    afterQuit(action) {
      actions.push(action);
    },
    markBroken() {
      broken = true;
    },
    get broken() {
      return broken;
    },
  };
}
