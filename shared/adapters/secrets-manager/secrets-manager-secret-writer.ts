import { PutSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { parseSecretReference, withKeySet } from "../../config/secret-reference";
import { ConfigError } from "../../core/errors";
import type { SecretStore } from "../../ports/secret-store";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";
import { inProcessSecretWriteLock, type SecretWriteLock } from "./secret-write-lock";
import { SecretsManagerSecretStore } from "./secrets-manager-secret-store";

/**
 * The largest secret value Secrets Manager stores: `SecretString` "Maximum length of 65536"
 * (AWS Secrets Manager API reference, SecretValueEntry). A tenant secret holding every mailbox's
 * credentials reaches it first: docs/deploy.md section 3 says how many mailboxes fit.
 */
export const SECRET_VALUE_MAX_BYTES = 65_536;

/**
 * The onboarding handler's secrets on AWS: reads are not cached (a grant just written must be read
 * back, and two Lambda instances must agree on "this link was used"), writes are PutSecretValue
 * of an existing secret. The stack grants PutSecretValue on the tenant's Google secrets only.
 *
 * A `name#key` reference is one key of a secret shared by the tenant's mailboxes: writing it is a
 * read-modify-write of the whole secret under `lock`, so two mailboxes onboarding at once both
 * keep their key (docs/onboarding.md, "One secret per tenant"). The default lock serializes this
 * process only; the onboarding Lambda passes the ledger-lease lock that spans containers.
 */
export class SecretsManagerSecretWriter implements SecretStore {
  readonly #client: SecretsManagerClient;
  readonly #reader: SecretsManagerSecretStore;
  readonly #lock: SecretWriteLock;

  constructor(client: SecretsManagerClient, options: { lock?: SecretWriteLock } = {}) {
    this.#client = client;
    this.#reader = new SecretsManagerSecretStore({ client, ttlMs: 0 });
    this.#lock = options.lock ?? inProcessSecretWriteLock();
  }

  get(reference: string): Promise<string> {
    return this.#reader.get(reference);
  }

  async set(reference: string, value: Record<string, unknown>): Promise<void> {
    const { secret, key } = parseSecretReference(reference);
    if (key === undefined) return this.put(reference, secret, JSON.stringify(value));
    await this.#lock.run(secret, async () => {
      const whole = await this.#reader.fresh(secret);
      await this.put(reference, secret, JSON.stringify(withKeySet(secret, key, whole, value)));
    });
  }

  private async put(reference: string, name: string, value: string): Promise<void> {
    const bytes = Buffer.byteLength(value);
    if (bytes > SECRET_VALUE_MAX_BYTES) {
      // Refused before the call, so the secret keeps every other mailbox's key as it was.
      throw new ConfigError(
        reference,
        `secret ${name} would be ${bytes} bytes, over Secrets Manager's ${SECRET_VALUE_MAX_BYTES}-byte limit`,
        {
          hint: `Move some mailboxes' keys from ${name} to another secret of the tenant (e.g. ${name}-2) and point their references there (docs/deploy.md, section 3).`,
        },
      );
    }
    try {
      await this.#client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    } catch (error) {
      if (awsErrorName(error) === "ResourceNotFoundException") {
        throw new ConfigError(name, `secret ${name} does not exist in Secrets Manager`, {
          cause: error,
          hint: `Create the secret ${name} (value {}) before sending the link (docs/onboarding.md).`,
        });
      }
      throw mapAwsError(error, {
        service: "secrets",
        action: "secretsmanager:PutSecretValue",
        resource: name,
      });
    }
  }
}
