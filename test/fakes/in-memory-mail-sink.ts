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

/**
 * A Gmail stand-in for core tests: keeps every import call (so a test can prove "exactly once"),
 * answers `findExisting` by Message-ID when `canSearch`, and throws injected errors on import.
 */
export class FakeMailSink implements MailSink {
  readonly imported: ImportedMessage[] = [];
  importCalls = 0;
  findCalls = 0;
  canSearch = true;
  private readonly faults: Error[] = [];
  private rejecter: ((request: ImportRequest) => Error | undefined) | undefined;

  /** The next import calls throw these, in order, before reading the message. */
  failNextImport(...errors: Error[]): void {
    this.faults.push(...errors);
  }

  /** Every import for which `rule` returns an error throws it (e.g. a permanent 400). */
  rejectWhen(rule: (request: ImportRequest) => Error | undefined): void {
    this.rejecter = rule;
  }

  async import(request: ImportRequest): Promise<{ gmailId: string }> {
    this.importCalls++;
    const fault = this.faults.shift() ?? this.rejecter?.(request);
    if (fault !== undefined) throw fault;
    const chunks: Uint8Array[] = [];
    for await (const chunk of await request.open()) chunks.push(chunk);
    const gmailId = `gmail-${this.imported.length + 1}`;
    this.imported.push({
      gmailId,
      user: request.mailbox.gmail.user,
      uidl: request.uidl,
      messageIdHeader: request.messageIdHeader,
      bytes: new Uint8Array(Buffer.concat(chunks)),
    });
    return { gmailId };
  }

  async findExisting(mailbox: MailboxConfig, messageIdHeader: string): Promise<string | undefined> {
    this.findCalls++;
    if (!this.canSearch) return undefined;
    return this.imported.find((m) => m.user === mailbox.gmail.user && m.messageIdHeader === messageIdHeader)
      ?.gmailId;
  }

  /** How many times a message with this UIDL was imported. */
  countFor(uidl: string): number {
    return this.imported.filter((m) => m.uidl === uidl).length;
  }
}
