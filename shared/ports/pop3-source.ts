import type { MailboxConfig } from "../config/tenant-config";
import type { ServerMessage } from "../core/model";

/**
 * A source of POP3 sessions for a mailbox. The adapter resolves credentials and TLS settings
 * from the mailbox config; the core only sees sessions.
 *
 * Errors: `MailboxBusyError` (IN-USE / LOGIN-DELAY: try later), `CredentialsError`,
 * `TlsError`, `TimeoutError`, `ConnectionClosedError`, `ProtocolError`, `Pop3CommandError`.
 */
export interface Pop3Source {
  /** Connects, authenticates and returns a session in TRANSACTION state. */
  open(mailbox: MailboxConfig): Promise<Pop3Session>;
}

/** What the server announced for this session (docs/pop3-servers.md). */
export interface Pop3SessionCapabilities {
  /** The server accepted `UTF8` (RFC 6856): messages are served as stored, raw UTF-8 headers included. */
  readonly utf8: boolean;
  /**
   * `LOGIN-DELAY` (RFC 2449 §6.8), after login when the server says it again: the server refuses
   * a new login this many seconds after the last one, so one session must list, copy and delete.
   */
  readonly loginDelaySeconds?: number;
}

/** One authenticated POP3 session. Message numbers are valid only inside it (RFC 1939 §7). */
export interface Pop3Session {
  /** What the server announced; absent for sources that do not know (in-memory fakes). */
  readonly capabilities?: Pop3SessionCapabilities;
  /** UIDL and LIST merged: every message on the server with its per-session number. */
  listMessages(): Promise<ServerMessage[]>;
  /**
   * RETR as a byte stream: dot-stuffing removed, CRLF kept, 8-bit and NUL bytes kept.
   * Throws `MessageTooLargeError` (while streaming) once more than `maxBytes` arrive.
   * The stream must be consumed or the session aborted before the next command.
   */
  retrieve(messageNumber: number, options: { maxBytes: number }): Promise<AsyncIterable<Uint8Array>>;
  /** Marks for deletion; takes effect only if `quit()` reports `committed` (RFC 1939 §6). */
  markDeleted(messageNumber: number): Promise<void>;
  /** QUIT: enters UPDATE state; `committed` is true only on the server's `+OK`. */
  quit(): Promise<{ committed: boolean }>;
  /** Drops the connection without QUIT, so no DELE takes effect. Safe to call twice. */
  abort(): void;
}
