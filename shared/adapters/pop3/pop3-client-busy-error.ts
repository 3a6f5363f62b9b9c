import { Pop2GmailError } from "../../core/errors";

/**
 * A command was issued while a RETR stream of the same client is still open. POP3 has one
 * reply channel, so the stream must be read to its end (or destroyed, which drops the
 * connection) first. Thrown instead of waiting, because waiting would deadlock a caller that
 * awaits the command before reading the stream.
 */
export class Pop3ClientBusyError extends Pop2GmailError {
  readonly code = "POP3_CLIENT_BUSY";
  readonly retryable = false;
}
