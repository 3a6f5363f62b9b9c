import { createHash, randomUUID } from "node:crypto";
import type { MailboxConfig } from "../config/tenant-config";
import type { Pop3Session } from "../ports/pop3-source";
import type { BusyReason } from "../ports/telemetry";
import { CredentialsError, MailboxBusyError, Pop2GmailError } from "./errors";
import { contentIdFor, contentOf, serverUidlOf } from "./message-identity";
import type { ContentDigest, MailboxKey, ServerMessage } from "./model";
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
  /**
   * `messages()` with each message's base identity (docs/pipeline.md "Message identity"): its
   * UIDL, or, for a UIDL listed more than once or named in `contentMode`, a content identity
   * (`contentIdFor`), for which the message is read once in this session and hashed. A message
   * that could not be read has no identity (the session is then broken).
   */
  identify(contentMode?: ReadonlySet<string>): Promise<readonly IdentifiedMessage[]>;
  /**
   * The server message a ledger id names in this session, if it is still there: by UIDL when the
   * server lists it once; by content (read and hashed here) for a content identity, and for a
   * UIDL listed more than once when `content` says what the message holds (else undefined: never
   * one message in place of another).
   */
  find(ledgerId: string, content?: Partial<ContentDigest>): Promise<ServerMessage | undefined>;
  /** Size and SHA-256 of a message of this session (RETR, read once and cached). */
  digestOf(message: ServerMessage): Promise<ContentDigest>;
  /** Runs after QUIT with whether it committed; not run when the session was aborted. */
  afterQuit(action: (committed: boolean) => Promise<void>): void;
  /** Marks the connection unusable (a RETR failed half-way): later work in it is skipped. */
  markBroken(): void;
  /** True once `markBroken` was called. */
  readonly broken: boolean;
}

/** A listed message with its base identity in this session (see `SessionScope.identify`). */
export interface IdentifiedMessage extends ServerMessage {
  /** The UIDL, or a content identity; undefined when the message could not be read to hash it. */
  readonly identity: string | undefined;
}

/** Bound of a RETR made only to hash a message (docs/pipeline.md "Message identity"). */
const HASH_MAX_BYTES = 2 * 1024 * 1024 * 1024;

/** The outcome of a session: the function's value, or "busy" when the mailbox was not available. */
export type SessionOutcome<T> =
  | { readonly kind: "done"; readonly value: T; readonly committed: boolean }
  | { readonly kind: "busy"; readonly reason: BusyReason };

export type SessionDeps = Pick<PipelineDeps, "pop3" | "leases" | "telemetry" | "holderId" | "sessionLeaseMs">;

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
    options.leaseMs ?? deps.sessionLeaseMs?.() ?? DEFAULT_SESSION_LEASE_MS,
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
  let byUidl: Map<string, ServerMessage[]> | undefined;
  const digests = new Map<number, ContentDigest>();
  let broken = false;
  const messages = (): Promise<readonly ServerMessage[]> => {
    listing ??= session.listMessages();
    return listing;
  };
  const withUidl = async (uidl: string): Promise<readonly ServerMessage[]> => {
    if (byUidl === undefined) {
      byUidl = new Map();
      for (const message of await messages()) {
        const twins = byUidl.get(message.uidl);
        if (twins === undefined) byUidl.set(message.uidl, [message]);
        else twins.push(message);
      }
    }
    return byUidl.get(uidl) ?? [];
  };
  const digestOf = async (message: ServerMessage): Promise<ContentDigest> => {
    const known = digests.get(message.number);
    if (known !== undefined) return known;
    const hash = createHash("sha256");
    let size = 0;
    try {
      for await (const chunk of await session.retrieve(message.number, { maxBytes: HASH_MAX_BYTES })) {
        hash.update(chunk);
        size += chunk.length;
      }
    } catch (error) {
      // A RETR cut short leaves the connection mid-response: no further command may use it.
      broken = true;
      throw error;
    }
    const digest = { size, sha256: hash.digest("hex") };
    digests.set(message.number, digest);
    return digest;
  };
  return {
    mailbox,
    config,
    session: onlyOneDelePerMessage(session),
    messages,
    async identify(contentMode = new Set<string>()) {
      const identified: IdentifiedMessage[] = [];
      for (const message of await messages()) {
        if ((await withUidl(message.uidl)).length === 1 && !contentMode.has(message.uidl)) {
          identified.push({ ...message, identity: message.uidl });
          continue;
        }
        let identity: string | undefined;
        if (!broken) {
          try {
            identity = contentIdFor(message.uidl, message.size, (await digestOf(message)).sha256);
          } catch (error) {
            if (!(error instanceof Pop2GmailError)) throw error;
          }
        }
        identified.push({ ...message, identity });
      }
      return identified;
    },
    async find(ledgerId, content) {
      const twins = await withUidl(serverUidlOf(ledgerId));
      const named = contentOf(ledgerId);
      if (named !== undefined) {
        for (const message of twins) {
          if (message.size !== named.listedSize) continue;
          if ((await digestOf(message)).sha256.startsWith(named.sha256Prefix)) return message;
        }
        return undefined;
      }
      if (twins.length <= 1) return twins[0];
      if (content?.sha256 === undefined) return undefined;
      for (const message of twins) {
        const digest = await digestOf(message);
        if (digest.sha256 === content.sha256 && (content.size ?? digest.size) === digest.size) return message;
      }
      return undefined;
    },
    digestOf,
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

/**
 * The session as use cases see it: a second DELE of one message number is not sent (two ledger
 * ids can name one message, docs/pipeline.md "Message identity"; a server answers a repeated
 * DELE with -ERR, which would abort the session and with it every DELE before it).
 */
function onlyOneDelePerMessage(session: Pop3Session): Pop3Session {
  const marked = new Set<number>();
  return new Proxy(session, {
    get(target, property) {
      if (property === "markDeleted") {
        return async (messageNumber: number) => {
          if (marked.has(messageNumber)) return;
          await target.markDeleted(messageNumber);
          marked.add(messageNumber);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
