import { createHash } from "node:crypto";
import { type MailboxConfig, mailboxSchema } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";
import { gmailCopyOf } from "../../shared/core/gmail-copy";
import type { ImportRequest } from "../../shared/ports/mail-sink";
import type { SecretStore } from "../../shared/ports/secret-store";
import { streamOf } from "./gmail-test-mail";

/** Secrets held in a map, for tests; `set` replaces a value as a re-run of the auth command would. */
export class MapSecretStore implements SecretStore {
  readonly #values = new Map<string, string>();
  set(name: string, value: string): void {
    this.#values.set(name, value);
  }
  async get(name: string): Promise<string> {
    const value = this.#values.get(name);
    if (value === undefined) throw new ConfigError(name, `secret ${name} is not set`);
    return value;
  }
}

/** A validated mailbox config importing into `user`, with overrides of the gmail block. */
export function gmailMailbox(
  id: string,
  user: string,
  gmail: Partial<MailboxConfig["gmail"]> & Record<string, unknown> = {},
): MailboxConfig {
  return mailboxSchema.parse({
    id,
    pop3: { host: "pop.example.it", user: id, passwordSecret: "pop3-password" },
    gmail: { user, credentialsSecret: `google-${id}`, ...gmail },
  });
}

/** An import request for `bytes`, whose `open` can be called again (and counts the calls). */
export function importRequestOf(
  mailbox: MailboxConfig,
  uidl: string,
  bytes: Buffer,
  messageIdHeader?: string,
): ImportRequest & { opens: () => number } {
  let opens = 0;
  return {
    mailbox,
    uidl,
    size: bytes.length,
    ...(messageIdHeader === undefined ? {} : { messageIdHeader }),
    open: async () => {
      opens += 1;
      return streamOf(bytes);
    },
    opens: () => opens,
  };
}

/**
 * An import request as the pipeline sends it: the Gmail copy of `bytes` (our trace line, and a
 * synthesized Message-ID when `messageIdHeader` is absent) with its trace id and Message-ID.
 */
export function pipelineImportRequestOf(
  mailbox: MailboxConfig,
  uidl: string,
  bytes: Buffer,
  messageIdHeader?: string,
): ImportRequest & { opens: () => number; copy: Buffer } {
  const copy = gmailCopyOf({
    tenant: "acme",
    mailboxId: mailbox.id,
    uidl,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    ...(messageIdHeader === undefined ? {} : { messageIdHeader }),
  });
  const sent = Buffer.concat([copy.prefix, bytes]);
  return {
    ...importRequestOf(mailbox, uidl, sent, copy.messageIdHeader),
    traceId: copy.traceId,
    copy: sent,
  };
}
