import { ProtocolError } from "../../core/errors";
import { printable } from "./status-line";

/** RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E. */
const UIDL_PATTERN = /^[\x21-\x7e]{1,70}$/;

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

/**
 * Parses UIDL's unique-id listings and enforces RFC 1939 §7: 1-70 printable characters, and
 * unique within the maildrop. A server that breaks this would make us skip or duplicate mail,
 * so it gets a clear error instead of a silent mismatch.
 */
export function parseUniqueIdListing(lines: string[]): Array<{ number: number; uidl: string }> {
  const numbers = new Set<number>();
  const uidls = new Set<string>();
  return lines.map((line) => {
    const space = line.indexOf(" ");
    const number = messageNumber(space === -1 ? undefined : line.slice(0, space), line);
    const uidl = line.slice(space + 1);
    if (!UIDL_PATTERN.test(uidl)) {
      throw new ProtocolError(
        "pop3",
        `UIDL of message ${number} breaks RFC 1939 §7 (1-70 characters 0x21-0x7E): "${printable(uidl)}"`,
        { hint: "The POP3 server reports invalid unique ids; pop2gmail cannot track its messages safely." },
      );
    }
    if (numbers.has(number)) throw new ProtocolError("pop3", `UIDL names message ${number} twice`);
    if (uidls.has(uidl)) {
      throw new ProtocolError(
        "pop3",
        `UIDL "${uidl}" is given to two messages (RFC 1939 §7 needs unique ids)`,
        {
          hint: "The POP3 server reports duplicate unique ids; pop2gmail cannot track its messages safely.",
        },
      );
    }
    numbers.add(number);
    uidls.add(uidl);
    return { number, uidl };
  });
}
