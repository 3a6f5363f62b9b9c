import { readFile } from "node:fs/promises";
import type { MailboxConfig } from "../../config/tenant-config";
import { ConfigError, ProtocolError } from "../../core/errors";
import type { ServerMessage } from "../../core/model";
import type { Pop3Session, Pop3SessionCapabilities, Pop3Source } from "../../ports/pop3-source";
import type { SecretStore } from "../../ports/secret-store";
import { assertCredentialSafe, Pop3Client, type Pop3ConnectOptions } from "./pop3-client";

/** RFC 8314 §3.3 (POP3S, implicit TLS) and RFC 1939 §3 (POP3, plaintext or STLS). */
const IMPLICIT_TLS_PORT = 995;
const PLAIN_PORT = 110;

export interface Pop3MailboxSourceDependencies {
  readonly secrets: SecretStore;
  /** Overrides applied on top of what the mailbox config says (tests: short timeouts, a test CA). */
  readonly connectOptions?: Partial<Pop3ConnectOptions>;
}

/** The `Pop3Source` port over our own `Pop3Client`. */
export class Pop3MailboxSource implements Pop3Source {
  readonly #dependencies: Pop3MailboxSourceDependencies;

  constructor(dependencies: Pop3MailboxSourceDependencies) {
    this.#dependencies = dependencies;
  }

  /**
   * Connects with the mailbox's TLS settings, logs in with the password from the named secret and
   * returns a session in TRANSACTION state. On any failure the connection is dropped (no QUIT).
   */
  async open(mailbox: MailboxConfig): Promise<Pop3Session> {
    const pop3 = mailbox.pop3;
    const ca = pop3.caFile === undefined ? undefined : await readCaFile(pop3.caFile, mailbox.id);
    const options: Pop3ConnectOptions = {
      host: pop3.host,
      port: pop3.port ?? (pop3.tls === "implicit" ? IMPLICIT_TLS_PORT : PLAIN_PORT),
      tls: pop3.tls,
      allowPlaintext: pop3.allowPlaintext,
      ...(ca === undefined ? {} : { ca }),
      ...(pop3.certificateSha256 === undefined ? {} : { certificateSha256: pop3.certificateSha256 }),
      ...this.#dependencies.connectOptions,
    };
    const password = await this.#dependencies.secrets.get(pop3.passwordSecret);
    // Refused here, at secret load, with the secret's name; the client guards again before writing.
    assertCredentialSafe(
      password,
      "password",
      `mailboxes[${mailbox.id}].pop3.passwordSecret`,
      `the secret "${pop3.passwordSecret}"`,
    );
    const client = await Pop3Client.connect(options);
    let capabilities: Pop3SessionCapabilities;
    try {
      capabilities = await loginWithCapabilities(client, pop3.user, password);
    } catch (error) {
      client.destroy();
      throw error;
    }
    return new ClientSession(client, capabilities);
  }
}

/**
 * CAPA, `UTF8` before login when announced (RFC 6856 §2: AUTHORIZATION state; Courier also takes
 * it later), the login, then CAPA again when the server announced UTF8 or LOGIN-DELAY, since both
 * may be per user (RFC 2449 §6.8: the value after login is the one that counts).
 */
async function loginWithCapabilities(
  client: Pop3Client,
  user: string,
  password: string,
): Promise<Pop3SessionCapabilities> {
  const before = await client.capabilities();
  let utf8 = hasCapability(before, "UTF8") && (await client.utf8());
  await client.login(user, password);
  const perUser = hasCapability(before, "UTF8") || hasCapability(before, "LOGIN-DELAY");
  const after = perUser ? await client.capabilities() : before;
  if (!utf8 && hasCapability(after, "UTF8")) utf8 = await client.utf8();
  const loginDelaySeconds = loginDelayOf(after) ?? loginDelayOf(before);
  return { utf8, ...(loginDelaySeconds === undefined ? {} : { loginDelaySeconds }) };
}

function hasCapability(lines: readonly string[], name: string): boolean {
  return lines.some((line) => line.toUpperCase().split(" ")[0] === name);
}

/** `LOGIN-DELAY <seconds> [USER]` (RFC 2449 §6.8); a value above a day is read as a day. */
function loginDelayOf(lines: readonly string[]): number | undefined {
  for (const line of lines) {
    const match = /^LOGIN-DELAY (\d{1,9})(?: |$)/i.exec(line);
    if (match) return Math.min(Number(match[1]), 86_400);
  }
  return undefined;
}

async function readCaFile(path: string, mailboxId: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ConfigError(`mailboxes[${mailboxId}].pop3.caFile`, `Cannot read the CA file ${path}`, {
      cause: error,
      hint: "Point caFile at a readable PEM file of the server's certificate authority.",
    });
  }
}

/** One authenticated session, as the core sees it. */
class ClientSession implements Pop3Session {
  readonly #client: Pop3Client;
  readonly capabilities: Pop3SessionCapabilities;

  constructor(client: Pop3Client, capabilities: Pop3SessionCapabilities) {
    this.#client = client;
    this.capabilities = capabilities;
  }

  async listMessages(): Promise<ServerMessage[]> {
    const uidls = await this.#client.uidl();
    const sizes = new Map((await this.#client.list()).map((entry) => [entry.number, entry.size]));
    if (sizes.size !== uidls.length) {
      throw new ProtocolError("pop3", `LIST names ${sizes.size} messages but UIDL names ${uidls.length}`);
    }
    return uidls.map(({ number, uidl, invalid }) => {
      const size = sizes.get(number);
      if (size === undefined) throw new ProtocolError("pop3", `Message ${number} is in UIDL but not in LIST`);
      return invalid === undefined ? { number, uidl, size } : { number, uidl, size, invalidUidl: invalid };
    });
  }

  async retrieve(messageNumber: number, options: { maxBytes: number }): Promise<AsyncIterable<Uint8Array>> {
    return this.#client.retrieve(messageNumber, { maxBytes: options.maxBytes });
  }

  markDeleted(messageNumber: number): Promise<void> {
    return this.#client.dele(messageNumber);
  }

  quit(): Promise<{ committed: boolean }> {
    return this.#client.quit();
  }

  abort(): void {
    this.#client.destroy();
  }
}
