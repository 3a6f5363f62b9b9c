import { PutSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { parseSecretReference, withKeySet } from "../../config/secret-reference";
import { ConfigError } from "../../core/errors";
import type { SecretStore } from "../../ports/secret-store";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";
import { inProcessSecretWriteLock, type SecretWriteLock } from "./secret-write-lock";
import { SecretsManagerSecretStore } from "./secrets-manager-secret-store";

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
    if (key === undefined) return this.put(secret, value);
    await this.#lock.run(secret, async () => {
      const whole = await this.#reader.fresh(secret);
      await this.put(secret, withKeySet(secret, key, whole, value));
    });
  }

  private async put(name: string, value: Record<string, unknown>): Promise<void> {
    try {
      await this.#client.send(
        new PutSecretValueCommand({ SecretId: name, SecretString: JSON.stringify(value) }),
      );
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
