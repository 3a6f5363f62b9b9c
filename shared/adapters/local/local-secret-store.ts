import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseSecretReference, valueAtReference, withKeySet } from "../../config/secret-reference";
import { ConfigError } from "../../core/errors";
import type { SecretStore } from "../../ports/secret-store";

/** Prefix of the environment variables that hold secrets: `POP2GMAIL_SECRET_<NAME>`. */
export const SECRET_ENV_PREFIX = "POP2GMAIL_SECRET_";

/** `acme/info-pop3` -> `POP2GMAIL_SECRET_ACME_INFO_POP3`. */
export function secretEnvName(name: string): string {
  return `${SECRET_ENV_PREFIX}${name
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toUpperCase()}`;
}

/**
 * Secrets of the local runtime: first the environment (`POP2GMAIL_SECRET_<NAME upper-snake>`),
 * then the JSON credentials file (`<dataDir>/credentials.json`, `{ "<name>": "value" | {...} }`,
 * an object value is handed out as its JSON, e.g. Google credentials; `name#key` reads the key of
 * the object under `name`, the local form of one secret per tenant). The file must be readable
 * by its owner only (mode 0600), like an SSH key. Values are never logged or put in an error.
 */
export class LocalSecretStore implements SecretStore {
  constructor(
    private readonly credentialsFile: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /**
   * `name`, or for `name#key` the key inside the secret's object (docs/deploy.md, section 2):
   * the variable of the whole reference first, then the secret's variable, then the file.
   */
  async get(reference: string): Promise<string> {
    const fromEnv = this.env[secretEnvName(reference)];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    const { secret, key } = parseSecretReference(reference);
    const secretFromEnv = key === undefined ? undefined : this.env[secretEnvName(secret)];
    if (secretFromEnv !== undefined && secretFromEnv !== "")
      return valueAtReference(reference, secretFromEnv);
    const value = (await this.readFile())[secret];
    if (key !== undefined && value !== undefined && value !== null) {
      return valueAtReference(reference, typeof value === "string" ? value : JSON.stringify(value));
    }
    if (key === undefined && typeof value === "string" && value !== "") return value;
    if (key === undefined && typeof value === "object" && value !== null) return JSON.stringify(value);
    throw new ConfigError(
      reference,
      key === undefined ? `the secret "${secret}" is not set` : `secret ${secret} has no key ${key}`,
      {
        hint:
          key === undefined
            ? `Set the environment variable ${secretEnvName(secret)}, or add "${secret}" to ${this.credentialsFile} (mode 0600).`
            : `Add { "${secret}": { "${key}": ... } } to ${this.credentialsFile} (mode 0600), or set ${secretEnvName(reference)}.`,
      },
    );
  }

  /**
   * Stores a secret (or, for `name#key`, one key of the secret's object, keeping the others) in
   * the credentials file (mode 0600), replacing the file atomically. Writes of this store are
   * serialized, so two mailboxes set at once both keep their key.
   */
  set(reference: string, value: string | Record<string, unknown>): Promise<void> {
    const write = this.#writes.then(() => this.write(reference, value));
    this.#writes = write.catch(() => undefined);
    return write;
  }

  #writes: Promise<unknown> = Promise.resolve();

  private async write(reference: string, value: string | Record<string, unknown>): Promise<void> {
    const current = await this.readFile();
    const { secret, key } = parseSecretReference(reference);
    if (key === undefined) {
      current[secret] = value;
    } else {
      const existing = current[secret];
      current[secret] = withKeySet(
        secret,
        key,
        existing === undefined
          ? undefined
          : typeof existing === "string"
            ? existing
            : JSON.stringify(existing),
        value,
      );
    }
    await mkdir(dirname(this.credentialsFile), { recursive: true, mode: 0o700 });
    const temp = join(dirname(this.credentialsFile), `.credentials-${randomUUID()}.tmp`);
    const file = await open(temp, "w", 0o600);
    try {
      await file.writeFile(`${JSON.stringify(current, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.credentialsFile);
  }

  private async readFile(): Promise<Record<string, unknown>> {
    const info = await stat(this.credentialsFile).catch(() => undefined);
    if (info === undefined) return {};
    if ((info.mode & 0o077) !== 0) {
      throw new ConfigError(
        this.credentialsFile,
        `${this.credentialsFile} can be read by other users (mode ${(info.mode & 0o777).toString(8)})`,
        { hint: `Run: chmod 600 ${this.credentialsFile}` },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(await readFile(this.credentialsFile, "utf8"));
    } catch (cause) {
      // The parser's message may quote the file's text, i.e. a secret: keep only the fact.
      throw new ConfigError(this.credentialsFile, `${this.credentialsFile} is not valid JSON`, {
        cause: new Error(cause instanceof Error ? cause.name : "parse error"),
        hint: 'Write it as a JSON object: { "<secret name>": "<value>" }.',
      });
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new ConfigError(this.credentialsFile, `${this.credentialsFile} is not a JSON object`, {
        hint: 'Write it as a JSON object: { "<secret name>": "<value>" }.',
      });
    }
    return json as Record<string, unknown>;
  }
}
