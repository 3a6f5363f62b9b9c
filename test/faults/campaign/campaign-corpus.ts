import type { GeneratedMessage } from "../../fixtures/awkward-messages";

/**
 * The corpus sides of the campaign: messages that share a Message-ID (resent mail, lists, broken
 * senders: issue 10 item 1), and the Gmail copy seen without the trace header lines pop2gmail
 * prepends (docs/pipeline.md: the copy is the archived bytes preceded by `X-Pop2Gmail-Id` and,
 * for a message without one, a synthesized `Message-ID` in `pop2gmail.invalid`).
 */

/** The largest message that may share a Message-ID: small enough for a one-request import. */
const SHARED_MAX_BYTES = 24 * 1024;

/**
 * Gives about `rate` of the small messages that have a Message-ID the Message-ID of an earlier
 * message (at least one when the corpus has a candidate), choosing with `random`. Returns the new
 * corpus and the indexes of the messages that now share an earlier message's id.
 */
export function shareMessageIds(
  messages: readonly GeneratedMessage[],
  rate: number,
  random: () => number,
): { readonly messages: GeneratedMessage[]; readonly sharing: ReadonlySet<number> } {
  const result = [...messages];
  const sharing = new Set<number>();
  const originals: number[] = [];
  const candidates: number[] = [];
  messages.forEach((message, index) => {
    if (message.messageId === undefined) return;
    if (originals.length > 0 && message.bytes.length <= SHARED_MAX_BYTES) candidates.push(index);
    originals.push(index);
  });
  const chosen = candidates.filter(() => random() < rate);
  if (chosen.length === 0 && candidates.length > 0) {
    chosen.push(candidates[Math.floor(random() * candidates.length)] ?? 0);
  }
  for (const index of chosen) {
    const message = messages[index];
    const earlier = originals.filter((o) => o < index);
    const source = messages[earlier[Math.floor(random() * earlier.length)] ?? -1];
    if (message?.messageId === undefined || source?.messageId === undefined) continue;
    const line = Buffer.from(`Message-ID: ${message.messageId}\r\n`);
    const at = message.bytes.indexOf(line);
    if (at < 0) continue;
    const bytes = Buffer.concat([
      message.bytes.subarray(0, at),
      Buffer.from(`Message-ID: ${source.messageId}\r\n`),
      message.bytes.subarray(at + line.length),
    ]);
    result[index] = { name: message.name, messageId: source.messageId, bytes };
    sharing.add(index);
  }
  return { messages: result, sharing };
}

/** Trace lines pop2gmail may prepend to the Gmail copy. */
const TRACE_LINE =
  /^(?:X-Pop2Gmail-[A-Za-z0-9-]*:[^\r\n]*|Message-ID:[ \t]*<[^>\r\n]*@pop2gmail\.invalid>)\r\n/i;

/** A Gmail copy without the trace header lines pop2gmail prepended: the archived bytes. */
export function withoutTraceLines(raw: Buffer): Buffer {
  let rest = raw;
  for (;;) {
    const head = rest.subarray(0, 512).toString("latin1");
    const match = TRACE_LINE.exec(head);
    if (!match) return rest;
    rest = rest.subarray(Buffer.byteLength(match[0], "latin1"));
  }
}

/** The Message-ID of a message (header section only, brackets kept), if it has one. */
export function messageIdOf(bytes: Buffer): string | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  const head = bytes.subarray(0, end < 0 ? bytes.length : end).toString("latin1");
  return /^message-id:[ \t]*(\S+)/im.exec(head)?.[1];
}
