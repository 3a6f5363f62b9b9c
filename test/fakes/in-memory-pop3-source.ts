import type { MailboxConfig } from "../../shared/config/tenant-config";
import { MailboxBusyError, MessageTooLargeError, Pop3CommandError } from "../../shared/core/errors";
import { invalidUidlStandIn, isValidUidl } from "../../shared/core/message-identity";
import type { ServerMessage } from "../../shared/core/model";
import type { Pop3Session, Pop3Source } from "../../shared/ports/pop3-source";

interface StoredMessage {
  readonly uidl: string;
  readonly bytes: Uint8Array;
}

/** Hooks that let a test break the exchange at a chosen point (a throw simulates a crash). */
export interface Pop3Faults {
  /** Called after the last byte of a RETR was handed out; a throw fails the stream there. */
  afterRetrieve?: (uidl: string) => void;
  /** Called when QUIT is sent, before the server acts on it; a throw means QUIT never arrived. */
  beforeQuit?: () => void;
}

/**
 * A fake POP3 maildrop with the semantics the core relies on: message numbers are assigned per
 * session (RFC 1939 §7), DELE takes effect only when QUIT commits (§6), a dropped session deletes
 * nothing, and with `lockSessions` a second session gets `-ERR [IN-USE]` (RFC 2449 §8).
 */
export class InMemoryPop3Source implements Pop3Source {
  private messages: StoredMessage[] = [];
  private sequence = 0;
  private openSessions = 0;
  lockSessions = true;
  quitCommits = true;
  chunkSize = 1000;
  faults: Pop3Faults = {};
  sessionsOpened = 0;
  /** UIDLs deleted by each committed QUIT, in order. */
  readonly commits: string[][] = [];
  /** Called with the UIDLs a QUIT is about to remove, so a test can check invariants at that moment. */
  onCommit: ((uidls: readonly string[]) => void) | undefined;
  private nextOpenError: Error | undefined;

  /** Adds a message; returns its UIDL. */
  add(bytes: Uint8Array, uidl = `uid-${++this.sequence}`): string {
    this.messages.push({ uidl, bytes });
    return uidl;
  }

  /** Another client (a phone's mail app) deletes the message (every message with this UIDL). */
  removeByOtherClient(uidl: string): void {
    this.messages = this.messages.filter((m) => m.uidl !== uidl);
  }

  uidls(): string[] {
    return this.messages.map((m) => m.uidl);
  }

  /** The next `open` fails with this error (busy, credentials, ...). */
  failNextOpen(error: Error): void {
    this.nextOpenError = error;
  }

  async open(_mailbox: MailboxConfig): Promise<Pop3Session> {
    const error = this.nextOpenError;
    this.nextOpenError = undefined;
    if (error !== undefined) throw error;
    if (this.lockSessions && this.openSessions > 0) {
      throw new MailboxBusyError("IN-USE", "-ERR [IN-USE] maildrop already locked");
    }
    this.openSessions++;
    this.sessionsOpened++;
    return new FakeSession(this, [...this.messages]);
  }

  /** @internal used by sessions. Removes exactly these messages (two may share a UIDL). */
  commit(removed: readonly StoredMessage[]): void {
    const uidls = removed.map((m) => m.uidl);
    this.onCommit?.(uidls);
    const gone = new Set(removed);
    this.messages = this.messages.filter((m) => !gone.has(m));
    this.commits.push(uidls);
  }

  /** The bytes of every message still on the server, in order. */
  contents(): Uint8Array[] {
    return this.messages.map((m) => m.bytes);
  }

  /** @internal used by sessions. */
  closeSession(): void {
    this.openSessions--;
  }
}

class FakeSession implements Pop3Session {
  private readonly marked = new Set<number>();
  private closed = false;

  constructor(
    private readonly source: InMemoryPop3Source,
    private readonly view: readonly StoredMessage[],
  ) {}

  /** Like the POP3 adapter: an id that breaks RFC 1939 §7 is listed as a stand-in with a reason. */
  async listMessages(): Promise<ServerMessage[]> {
    this.assertOpen();
    return this.view.map((m, i) =>
      isValidUidl(m.uidl)
        ? { number: i + 1, uidl: m.uidl, size: m.bytes.length }
        : {
            number: i + 1,
            uidl: invalidUidlStandIn(Buffer.from(m.uidl, "latin1")),
            size: m.bytes.length,
            invalidUidl: `UIDL of message ${i + 1} breaks RFC 1939 §7`,
          },
    );
  }

  async retrieve(messageNumber: number, options: { maxBytes: number }): Promise<AsyncIterable<Uint8Array>> {
    this.assertOpen();
    const message = this.messageAt(messageNumber, "RETR");
    const { chunkSize, faults } = this.source;
    return (async function* () {
      let sent = 0;
      for (let i = 0; i < message.bytes.length; i += chunkSize) {
        const chunk = message.bytes.slice(i, i + chunkSize);
        sent += chunk.length;
        if (sent > options.maxBytes) {
          throw new MessageTooLargeError(
            options.maxBytes,
            `message is larger than ${options.maxBytes} bytes`,
          );
        }
        yield chunk;
      }
      faults.afterRetrieve?.(message.uidl);
    })();
  }

  async markDeleted(messageNumber: number): Promise<void> {
    this.assertOpen();
    this.messageAt(messageNumber, "DELE");
    this.marked.add(messageNumber);
  }

  async quit(): Promise<{ committed: boolean }> {
    this.assertOpen();
    this.source.faults.beforeQuit?.();
    this.close();
    if (!this.source.quitCommits) return { committed: false };
    this.source.commit([...this.marked].flatMap((n) => this.view.slice(n - 1, n)));
    return { committed: true };
  }

  abort(): void {
    if (!this.closed) this.close();
  }

  private close(): void {
    this.closed = true;
    this.source.closeSession();
  }

  private messageAt(messageNumber: number, command: string): StoredMessage {
    const message = this.view[messageNumber - 1];
    if (message === undefined || this.marked.has(messageNumber)) {
      throw new Pop3CommandError(command, undefined, "no such message");
    }
    return message;
  }

  private assertOpen(): void {
    if (this.closed) throw new Pop3CommandError("NOOP", undefined, "session is closed");
  }
}
