import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
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
 * an object value is handed out as its JSON, e.g. Google credentials). The file must be readable
 * by its owner only (mode 0600), like an SSH key. Values are never logged or put in an error.
 */
export class LocalSecretStore implements SecretStore {
  constructor(
    private readonly credentialsFile: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async get(name: string): Promise<string> {
    const fromEnv = this.env[secretEnvName(name)];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    const value = (await this.readFile())[name];
    if (typeof value === "string" && value !== "") return value;
    if (typeof value === "object" && value !== null) return JSON.stringify(value);
    throw new ConfigError(name, `the secret "${name}" is not set`, {
      hint: `Set the environment variable ${secretEnvName(name)}, or add "${name}" to ${this.credentialsFile} (mode 0600).`,
    });
  }

  /** Stores a secret in the credentials file (mode 0600), replacing the file atomically. */
  async set(name: string, value: string | Record<string, unknown>): Promise<void> {
    const current = await this.readFile();
    current[name] = value;
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
