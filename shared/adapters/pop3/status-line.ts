import { type Pop3ResponseCode, ProtocolError } from "../../core/errors";

/** A parsed single-line POP3 reply: `+OK text`, `-ERR [CODE] text`, or a SASL `+ challenge`. */
export type StatusLine =
  | { readonly kind: "ok"; readonly text: string }
  | { readonly kind: "err"; readonly code: Pop3ResponseCode | undefined; readonly text: string }
  | { readonly kind: "continue"; readonly text: string };

/** Longest server text copied into an error: enough to diagnose, short enough for a log line. */
const MAX_TEXT_IN_ERRORS = 200;

/**
 * Parses one status line (without its CRLF). Server text is decoded as latin1 so no byte is
 * rejected, then trimmed of control characters before it can reach a log.
 */
export function parseStatusLine(line: Buffer): StatusLine {
  const raw = line.toString("latin1");
  if (raw === "+OK" || raw.startsWith("+OK ")) return { kind: "ok", text: printable(raw.slice(4)) };
  if (raw === "-ERR" || raw.startsWith("-ERR ")) {
    const rest = raw.slice(5);
    // RFC 2449 §8: an extended response code is in square brackets right after "-ERR ".
    const match = /^\[([^\]\s]{1,64})\]\s*/.exec(rest);
    const code = match?.[1]?.toUpperCase();
    return { kind: "err", code, text: printable(match ? rest.slice(match[0].length) : rest) };
  }
  // RFC 5034 §4: "+ " (or a bare "+") carries a base64 SASL challenge.
  if (raw === "+" || raw.startsWith("+ ")) return { kind: "continue", text: raw.slice(2) };
  throw new ProtocolError(
    "pop3",
    `The server sent a reply that is neither +OK nor -ERR: "${printable(raw)}"`,
  );
}

/** Server text made safe for a log line: printable ASCII only, length bounded. */
export function printable(text: string): string {
  const cleaned = text.replace(/[^\x20-\x7e]/g, "?");
  return cleaned.length > MAX_TEXT_IN_ERRORS ? `${cleaned.slice(0, MAX_TEXT_IN_ERRORS)}...` : cleaned;
}
