import { GetSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { parseSecretReference, valueAtReference } from "../../config/secret-reference";
import { ConfigError } from "../../core/errors";
import type { SecretStore } from "../../ports/secret-store";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";

/** How a `SecretsManagerSecretStore` is built. */
export interface SecretsManagerSecretStoreOptions {
  readonly client: SecretsManagerClient;
  /** How long a value is reused before it is fetched again (picks up rotations). Default 5 min. */
  readonly ttlMs?: number;
  /** Epoch ms; injected so the TTL is testable without waiting. Default `Date.now`. */
  readonly now?: () => number;
}

interface CachedSecret {
  readonly value: Promise<string>;
  readonly fetchedAt: number;
}

/**
 * Secrets from AWS Secrets Manager, cached per Lambda container for `ttlMs` so a warm function
 * does not pay a GetSecretValue per message. Concurrent first reads share one call. A failed read
 * is not cached. Values are never logged and never put into an error: errors name the secret (and
 * the key of a `name#key` reference) only.
 */
export class SecretsManagerSecretStore implements SecretStore {
  private readonly client: SecretsManagerClient;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CachedSecret>();

  constructor(options: SecretsManagerSecretStoreOptions) {
    this.client = options.client;
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The secret's string value (a binary secret is read as UTF-8), or for `name#key` the key's value
   * in the secret's JSON object. The cache holds whole secrets: a tenant secret shared by 200
   * mailboxes costs one GetSecretValue per container and TTL, not one per mailbox.
   */
  async get(reference: string): Promise<string> {
    return valueAtReference(reference, await this.whole(parseSecretReference(reference).secret));
  }

  /** The whole value of the secret `name`, uncached: for a read-modify-write. */
  async fresh(name: string): Promise<string> {
    return this.fetch(name);
  }

  private whole(name: string): Promise<string> {
    const now = this.now();
    const cached = this.cache.get(name);
    if (cached !== undefined && now - cached.fetchedAt < this.ttlMs) return cached.value;
    const value = this.fetch(name);
    this.cache.set(name, { value, fetchedAt: now });
    value.catch(() => {
      if (this.cache.get(name)?.value === value) this.cache.delete(name);
    });
    return value;
  }

  private async fetch(name: string): Promise<string> {
    let result: { SecretString?: string | undefined; SecretBinary?: Uint8Array | undefined };
    try {
      result = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
    } catch (error) {
      if (awsErrorName(error) === "ResourceNotFoundException") {
        throw new ConfigError(name, `secret ${name} does not exist in Secrets Manager`, {
          cause: error,
          hint: `Create the secret ${name} in this account and region (pop2gmail setup does this), or fix the name in the tenant config.`,
        });
      }
      throw mapAwsError(error, {
        service: "secrets",
        action: "secretsmanager:GetSecretValue (and kms:Decrypt for a customer-managed key)",
        resource: name,
      });
    }
    if (result.SecretString !== undefined) return result.SecretString;
    if (result.SecretBinary !== undefined) return Buffer.from(result.SecretBinary).toString("utf8");
    throw new ConfigError(name, `secret ${name} has no value`, {
      hint: `Put a value into the secret ${name}.`,
    });
  }
}
