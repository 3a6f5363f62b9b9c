import type { MailboxConfig } from "../../shared/config/tenant-config";
import { splitGmailCopy } from "../../shared/core/gmail-copy";
import type { ImportProof, ImportRequest, MailSink } from "../../shared/ports/mail-sink";

/** One message as the fake Gmail holds it. */
export interface ImportedMessage {
  readonly gmailId: string;
  readonly user: string;
  readonly uidl: string;
  /** The Message-ID the copy carried (the message's own or the one the core synthesized). */
  readonly messageIdHeader: string | undefined;
  /** The copy's `X-Pop2Gmail-Id`, if it carried one. */
  readonly traceId: string | undefined;
  /** The message as archived: the copy without the trace lines the core prepends. */
  readonly bytes: Uint8Array;
  /** The copy exactly as it was sent (trace lines included). */
  readonly sent: Uint8Array;
}

/** An import held at its start until the test lets it go (see `holdNextImport`). */
export interface HeldImport {
  /** Resolves once the held import call has begun. */
  readonly started: Promise<void>;
  /** Lets the held import go on. */
  release(): void;
}

/**
 * A Gmail stand-in for core tests. A re-import of a copy the user's mailbox already holds (same
 * Message-ID, same bytes) is merged into the earlier message (same id back, no second copy); a
 * different message that shares the Message-ID, or any message without one, is a new copy.
 * `imported` is what the mailbox holds, `rawImports` every import that reached it (merged or
 * not), so a test can tell "one copy" from "imported once". `findExisting` answers, when
 * `canSearch`, only with a message carrying the asked-for trace id (like the Gmail sink, which
 * checks candidates of `rfc822msgid:` for our `X-Pop2Gmail-Id`); imports can fail or be held.
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

  async findExisting(mailbox: MailboxConfig, proof: ImportProof): Promise<string | undefined> {
    this.findCalls++;
    if (!this.canSearch) return undefined;
    const user = mailbox.gmail.user;
    return this.imported.find(
      (m) => m.user === user && m.messageIdHeader === proof.messageIdHeader && m.traceId === proof.traceId,
    )?.gmailId;
  }

  /** How many copies of the message with this UIDL the mailbox holds. */
  countFor(uidl: string): number {
    return this.imported.filter((m) => m.uidl === uidl).length;
  }

  /** How many imports of the message with this UIDL reached the mailbox, merged ones included. */
  rawImportsFor(uidl: string): number {
    return this.rawImports.filter((u) => u === uidl).length;
  }

  /** Stores one import, merging a re-import of a copy the mailbox holds (same Message-ID and bytes). */
  private store(request: ImportRequest, sent: Uint8Array): string {
    this.rawImports.push(request.uidl);
    const user = request.mailbox.gmail.user;
    const earlier =
      request.messageIdHeader === undefined
        ? undefined
        : this.imported.find(
            (m) =>
              m.user === user &&
              m.messageIdHeader === request.messageIdHeader &&
              Buffer.from(m.sent).equals(Buffer.from(sent)),
          );
    if (earlier !== undefined) return earlier.gmailId;
    const gmailId = `gmail-${this.imported.length + 1}`;
    const copy = splitGmailCopy(sent);
    this.imported.push({
      gmailId,
      user,
      uidl: request.uidl,
      messageIdHeader: request.messageIdHeader,
      traceId: copy.traceId,
      bytes: copy.original,
      sent,
    });
    return gmailId;
  }
}
