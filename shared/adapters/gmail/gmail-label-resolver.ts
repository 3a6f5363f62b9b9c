import type { MailboxConfig } from "../../config/tenant-config";
import type { CredentialsError } from "../../core/errors";
import { GoogleScopeMissingError } from "./gmail-error-mapping";

/** A Gmail label as the API lists it. */
export interface GmailLabel {
  readonly id: string;
  readonly name: string;
}

/** The two label calls the resolver needs, already authorised, paced and retried by the sink. */
export interface LabelApi {
  list(mailbox: MailboxConfig): Promise<GmailLabel[]>;
  /** Creates the label; resolves `undefined` when Gmail answers 409 (it exists already: a race). */
  create(mailbox: MailboxConfig, name: string): Promise<GmailLabel | undefined>;
}

const SYSTEM_LABELS = /^(INBOX|UNREAD|STARRED|IMPORTANT|SPAM|TRASH|SENT|DRAFT|CHAT|CATEGORY_[A-Z]+)$/;

/** The default per-mailbox label: `POP/<mailbox id>` (a nested label under "POP"). */
export function defaultMailboxLabel(mailbox: MailboxConfig): string {
  return `POP/${mailbox.id}`;
}

/** Label names an import of `mailbox` carries: the configured ones (minus INBOX when skipInbox) and the mailbox label. */
export function labelNamesFor(mailbox: MailboxConfig): string[] {
  const names = mailbox.gmail.labels.filter((l) => !(mailbox.gmail.skipInbox && l === "INBOX"));
  names.push(mailbox.gmail.mailboxLabel ?? defaultMailboxLabel(mailbox));
  return [...new Set(names)];
}

/**
 * Turns label names into Gmail label ids. System labels are their own ids; user labels are
 * looked up (labels.list) and created on first use (labels.create), with the ids cached per user
 * for the life of the process. Without the gmail.labels scope the user label is skipped (the
 * import itself needs only gmail.insert) and a warning is given once.
 */
export class GmailLabelResolver {
  readonly #api: LabelApi;
  readonly #onUnavailable: (user: string, error: CredentialsError) => void;
  readonly #ids = new Map<string, string>();
  readonly #pending = new Map<string, Promise<string | undefined>>();
  readonly #noLabelScope = new Set<string>();

  constructor(api: LabelApi, onUnavailable: (user: string, error: CredentialsError) => void) {
    this.#api = api;
    this.#onUnavailable = onUnavailable;
  }

  /** The label ids for an import into `mailbox`. */
  async labelIdsFor(mailbox: MailboxConfig): Promise<string[]> {
    const ids: string[] = [];
    for (const name of labelNamesFor(mailbox)) {
      const id = SYSTEM_LABELS.test(name) ? name : await this.#userLabelId(mailbox, name);
      if (id !== undefined) ids.push(id);
    }
    return ids;
  }

  #userLabelId(mailbox: MailboxConfig, name: string): Promise<string | undefined> {
    const user = mailbox.gmail.user.toLowerCase();
    if (this.#noLabelScope.has(user)) return Promise.resolve(undefined);
    const key = `${user}\n${name.toLowerCase()}`;
    const known = this.#ids.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#resolve(mailbox, name, key).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #resolve(mailbox: MailboxConfig, name: string, key: string): Promise<string | undefined> {
    try {
      const id = (await this.#find(mailbox, name)) ?? (await this.#api.create(mailbox, name))?.id;
      // undefined here means the create lost a race (409): the label exists now, so list again.
      const resolved = id ?? (await this.#find(mailbox, name));
      if (resolved !== undefined) this.#ids.set(key, resolved);
      return resolved;
    } catch (error) {
      if (error instanceof GoogleScopeMissingError) {
        this.#noLabelScope.add(mailbox.gmail.user.toLowerCase());
        this.#onUnavailable(mailbox.gmail.user, error);
        return undefined;
      }
      throw error;
    }
  }

  async #find(mailbox: MailboxConfig, name: string): Promise<string | undefined> {
    const labels = await this.#api.list(mailbox);
    // Gmail label names are unique regardless of case.
    return labels.find((l) => l.name.toLowerCase() === name.toLowerCase())?.id;
  }
}
