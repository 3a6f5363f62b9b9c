import { createHash } from "node:crypto";
import { serverUidlOf } from "./message-identity";
import type { MessageKey } from "./model";

/**
 * The copy of a message that goes to Gmail (docs/pipeline.md, "The Gmail copy"): the archived
 * bytes, unchanged, preceded by trace header lines the way an MTA prepends `Received:`:
 *
 * - `X-Pop2Gmail-Id: <id>`, always: deterministic from tenant, mailbox, ledger id and the
 *   SHA-256 of the archived bytes. It is the proof a look-up checks: a Gmail message carrying
 *   *our* id is this message; another message with the same Message-ID is not.
 * - `Message-ID: <...@pop2gmail.invalid>`, only when the message has none: deterministic from
 *   tenant, mailbox, server UIDL and SHA-256, so Gmail can merge a re-import (and can be searched
 *   with `rfc822msgid:`) for every message.
 *
 * The archive stays byte-exact; only the Gmail copy carries these lines.
 */

/** The trace header's name. */
export const TRACE_HEADER = "X-Pop2Gmail-Id";

/** The domain of a synthesized Message-ID (RFC 2606 reserves `.invalid`). */
export const SYNTHETIC_MESSAGE_ID_DOMAIN = "pop2gmail.invalid";

/** What an archived message needs for its Gmail copy. */
export interface GmailCopySource extends MessageKey {
  /** SHA-256 (hex) of the archived bytes. */
  readonly sha256: string;
  /** The message's own Message-ID header, if it has one. */
  readonly messageIdHeader?: string;
}

/** The lines prepended to the archived bytes, and the ids they carry. */
export interface GmailCopy {
  /** Our unique id of this copy (the `X-Pop2Gmail-Id` value). */
  readonly traceId: string;
  /** The Message-ID the copy carries: the message's own, or the synthesized one. */
  readonly messageIdHeader: string;
  /** True when `messageIdHeader` was synthesized (the message had none). */
  readonly syntheticMessageId: boolean;
  /** The header lines to send before the archived bytes (CRLF line ends). */
  readonly prefix: Uint8Array;
}

/** The Gmail copy's trace lines for one archived message. */
export function gmailCopyOf(source: GmailCopySource): GmailCopy {
  const traceId = traceIdFor(source);
  const own = source.messageIdHeader;
  const messageIdHeader = own ?? syntheticMessageIdFor(source);
  const lines = [
    `${TRACE_HEADER}: ${traceId}`,
    ...(own === undefined ? [`Message-ID: ${messageIdHeader}`] : []),
  ];
  return {
    traceId,
    messageIdHeader,
    syntheticMessageId: own === undefined,
    prefix: new Uint8Array(Buffer.from(`${lines.join("\r\n")}\r\n`, "latin1")),
  };
}

/** Deterministic from tenant, mailbox, ledger id and content: the same message always gets the same id. */
export function traceIdFor(
  source: Pick<GmailCopySource, "tenant" | "mailboxId" | "uidl" | "sha256">,
): string {
  return digest(["trace-v1", source.tenant, source.mailboxId, source.uidl, source.sha256]);
}

/**
 * A Message-ID for a message without one, deterministic from tenant, mailbox, the UIDL the
 * server gave it and its content, so a re-import after any loss (a crash, a lost ledger) carries
 * the same Message-ID and Gmail merges it.
 */
export function syntheticMessageIdFor(
  source: Pick<GmailCopySource, "tenant" | "mailboxId" | "uidl" | "sha256">,
): string {
  return `<${digest(["msgid-v1", source.tenant, source.mailboxId, serverUidlOf(source.uidl), source.sha256])}@${SYNTHETIC_MESSAGE_ID_DOMAIN}>`;
}

/** The archived bytes behind the trace lines: what the Gmail copy streams. */
export async function* withPrefix(
  prefix: Uint8Array,
  body: AsyncIterable<Uint8Array>,
): AsyncIterable<Uint8Array> {
  yield prefix;
  // yield* hands an early stop (return) on to the source, so an S3 or file stream is closed.
  yield* body;
}

/**
 * Splits a Gmail copy into the trace lines pop2gmail prepended and the original bytes (for tests
 * and tools comparing Gmail's copy with the archive). Bytes without our trace line come back whole.
 */
export function splitGmailCopy(bytes: Uint8Array): {
  readonly traceId?: string;
  readonly syntheticMessageId?: string;
  readonly original: Uint8Array;
} {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = lineAt(buffer, 0);
  const trace = new RegExp(`^${TRACE_HEADER}: ([0-9a-f]{32})$`).exec(first?.text ?? "");
  if (first === undefined || trace?.[1] === undefined) return { original: bytes };
  const second = lineAt(buffer, first.next);
  const synthetic = /^Message-ID: (<[0-9a-f]{32}@pop2gmail\.invalid>)$/.exec(second?.text ?? "");
  if (second === undefined || synthetic?.[1] === undefined) {
    return { traceId: trace[1], original: bytes.subarray(first.next) };
  }
  return { traceId: trace[1], syntheticMessageId: synthetic[1], original: bytes.subarray(second.next) };
}

function digest(parts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part, "utf8").update("\0");
  return hash.digest("hex").slice(0, 32);
}

function lineAt(buffer: Buffer, start: number): { text: string; next: number } | undefined {
  const end = buffer.indexOf("\r\n", start, "latin1");
  if (end < 0 || end - start > 200) return undefined;
  return { text: buffer.toString("latin1", start, end), next: end + 2 };
}
