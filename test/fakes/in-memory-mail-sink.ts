import type { MailboxConfig } from "../../shared/config/tenant-config";
import type { ImportRequest, MailSink } from "../../shared/ports/mail-sink";

/** One message as the fake Gmail holds it. */
export interface ImportedMessage {
  readonly gmailId: string;
  readonly user: string;
  readonly uidl: string;
  readonly messageIdHeader: string | undefined;
  readonly bytes: Uint8Array;
}

/** An import held at its start until the test lets it go (see `holdNextImport`). */
export interface HeldImport {
  /** Resolves once the held import call has begun. */
  readonly started: Promise<void>;
  /** Lets the held import go on. */
  release(): void;
}

/**
 * A Gmail stand-in for core tests. Like Gmail, an import of a Message-ID the user's mailbox
 * already holds is merged into the earlier message (same id back, no second copy); without a
 * Message-ID every import is a new copy. `imported` is what the mailbox holds, `rawImports`
 * every import that reached it (merged or not), so a test can tell "one copy" from "imported
 * once". `findExisting` answers by Message-ID when `canSearch`; imports can fail or be held.
 */
export class FakeMailSink implements MailSink {
  readonly imported: ImportedMessage[] = [];
  /** UIDLs of the imports that reached the mailbox, in order (merged ones too). */
  readonly rawImports: string[] = [];
  importCalls = 0;
  findCalls = 0;
  canSearch = true;
  private readonly faults: Error[] = [];
  private readonly faultsAfter: Error[] = [];
  private readonly holds: { started: () => void; released: Promise<void> }[] = [];
  private rejecter: ((request: ImportRequest) => Error | undefined) | undefined;

  /** The next import calls throw these, in order, before reading the message. */
  failNextImport(...errors: Error[]): void {
    this.faults.push(...errors);
  }

  /**
   * The next import calls reach the mailbox and then throw these, in order: a timeout or a 5xx
   * that hides a completed import (the uncertain outcome).
   */
  failAfterNextImport(...errors: Error[]): void {
    this.faultsAfter.push(...errors);
  }

  /** Every import for which `rule` returns an error throws it (e.g. a permanent 400). */
  rejectWhen(rule: (request: ImportRequest) => Error | undefined): void {
    this.rejecter = rule;
  }

  /** The next import call waits, once begun, until `release()`: an import still running. */
  holdNextImport(): HeldImport {
    let started!: () => void;
    let release!: () => void;
    const startedPromise = new Promise<void>((resolve) => {
      started = resolve;
    });
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.holds.push({ started, released });
    return { started: startedPromise, release };
  }

  async import(request: ImportRequest): Promise<{ gmailId: string }> {
    this.importCalls++;
    const hold = this.holds.shift();
    if (hold !== undefined) {
      hold.started();
      await hold.released;
    }
    const fault = this.faults.shift() ?? this.rejecter?.(request);
    if (fault !== undefined) throw fault;
    const chunks: Uint8Array[] = [];
    for await (const chunk of await request.open()) chunks.push(chunk);
    const gmailId = this.store(request, new Uint8Array(Buffer.concat(chunks)));
    const faultAfter = this.faultsAfter.shift();
    if (faultAfter !== undefined) throw faultAfter;
    return { gmailId };
  }

  async findExisting(mailbox: MailboxConfig, messageIdHeader: string): Promise<string | undefined> {
    this.findCalls++;
    if (!this.canSearch) return undefined;
    return this.findByMessageId(mailbox.gmail.user, messageIdHeader)?.gmailId;
  }

  /** How many copies of the message with this UIDL the mailbox holds. */
  countFor(uidl: string): number {
    return this.imported.filter((m) => m.uidl === uidl).length;
  }

  /** How many imports of the message with this UIDL reached the mailbox, merged ones included. */
  rawImportsFor(uidl: string): number {
    return this.rawImports.filter((u) => u === uidl).length;
  }

  /** Stores one import, merging it into an earlier one with the same Message-ID as Gmail does. */
  private store(request: ImportRequest, bytes: Uint8Array): string {
    this.rawImports.push(request.uidl);
    const user = request.mailbox.gmail.user;
    const earlier =
      request.messageIdHeader === undefined ? undefined : this.findByMessageId(user, request.messageIdHeader);
    if (earlier !== undefined) return earlier.gmailId;
    const gmailId = `gmail-${this.imported.length + 1}`;
    this.imported.push({
      gmailId,
      user,
      uidl: request.uidl,
      messageIdHeader: request.messageIdHeader,
      bytes,
    });
    return gmailId;
  }

  private findByMessageId(user: string, messageIdHeader: string): ImportedMessage | undefined {
    return this.imported.find((m) => m.user === user && m.messageIdHeader === messageIdHeader);
  }
}
