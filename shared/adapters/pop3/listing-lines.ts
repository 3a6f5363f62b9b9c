import { ProtocolError } from "../../core/errors";
import { invalidUidlStandIn, isValidUidl } from "../../core/message-identity";
import { printable } from "./status-line";

/** Splits a decoded multi-line body into its lines (CRLF removed), refusing over-long ones. */
export function splitListingLines(body: Buffer, maxLineBytes: number): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf("\r\n", start);
    if (end === -1) end = body.length;
    if (end - start > maxLineBytes) {
      throw new ProtocolError("pop3", `A listing line is longer than ${maxLineBytes} bytes`);
    }
    lines.push(body.toString("latin1", start, end));
    start = end + 2;
  }
  return lines;
}

function messageNumber(field: string | undefined, line: string): number {
  if (field === undefined || !/^[1-9]\d{0,9}$/.test(field)) {
    throw new ProtocolError("pop3", `Malformed listing line: "${printable(line)}"`);
  }
  return Number(field);
}

/** Parses LIST's scan listings (RFC 1939 §5: "n size", anything after the size is ignored). */
export function parseScanListing(lines: string[]): Array<{ number: number; size: number }> {
  const seen = new Set<number>();
  return lines.map((line) => {
    const [numberField, sizeField] = line.split(" ");
    const number = messageNumber(numberField, line);
    if (sizeField === undefined || !/^\d{1,15}$/.test(sizeField)) {
      throw new ProtocolError("pop3", `Malformed LIST line: "${printable(line)}"`);
    }
    if (seen.has(number)) throw new ProtocolError("pop3", `LIST names message ${number} twice`);
    seen.add(number);
    return { number, size: Number(sizeField) };
  });
}

/** One line of a UIDL listing. `invalid` is set when the id breaks RFC 1939 §7. */
export interface UniqueIdEntry {
  readonly number: number;
  /** The unique-id, or `invalidUidlStandIn` of its raw bytes when it is invalid. */
  readonly uidl: string;
  /** Why the id is invalid, with a bounded printable excerpt (never the whole id). */
  readonly invalid?: string;
}

/** How much of an invalid id an error text quotes. */
const INVALID_EXCERPT_CHARS = 40;

/**
 * Parses UIDL's unique-id listings (RFC 1939 §7) from the decoded body. One bad entry never fails
 * the listing (docs/pipeline.md "Message identity"): an id that is empty, longer than 70
 * characters, or holds bytes outside 0x21-0x7E is reported with a stand-in and a reason, and an
 * id listed for two messages is reported for both (the core tells them apart by content). A line
 * longer than `maxLineBytes` is such an entry too: only its number is read from it and its id is
 * hashed in place, so no string of it is ever made. Still thrown, as they make the listing
 * unusable: a line without a valid message number, or one number listed twice.
 */
export function parseUniqueIdListing(body: Buffer, maxLineBytes: number): UniqueIdEntry[] {
  const numbers = new Set<number>();
  const entries: UniqueIdEntry[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf("\r\n", start);
    if (end === -1) end = body.length;
    const space = body.indexOf(0x20, start);
    const numberEnd = space === -1 || space > end ? end : space;
    const head = body.toString("latin1", start, Math.min(numberEnd, start + 16));
    const number = messageNumber(numberEnd - start > 10 ? undefined : head, head);
    if (numbers.has(number)) throw new ProtocolError("pop3", `UIDL names message ${number} twice`);
    numbers.add(number);
    const raw = body.subarray(Math.min(numberEnd + 1, end), end);
    const overLong = end - start > maxLineBytes;
    const uidl = overLong ? undefined : raw.toString("latin1");
    if (uidl !== undefined && isValidUidl(uidl)) {
      entries.push({ number, uidl });
    } else {
      const excerpt = printable(raw.toString("latin1", 0, INVALID_EXCERPT_CHARS));
      const more = raw.length > INVALID_EXCERPT_CHARS ? "..." : "";
      entries.push({
        number,
        uidl: invalidUidlStandIn(raw),
        invalid: `UIDL of message ${number} (${raw.length} bytes, "${excerpt}${more}") breaks RFC 1939 §7 (1-70 characters 0x21-0x7E)`,
      });
    }
    start = end + 2;
  }
  return entries;
}
