import { PutSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ConfigError } from "../../core/errors";
import type { SecretStore } from "../../ports/secret-store";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";
import { SecretsManagerSecretStore } from "./secrets-manager-secret-store";

/**
 * The onboarding handler's secrets on AWS: reads are not cached (a grant just written must be read
 * back, and two Lambda instances must agree on "this link was used"), writes are PutSecretValue
 * of an existing secret. The stack grants PutSecretValue on the tenant's Google secrets only.
 */
export class SecretsManagerSecretWriter implements SecretStore {
  readonly #client: SecretsManagerClient;
  readonly #reader: SecretsManagerSecretStore;

  constructor(client: SecretsManagerClient) {
    this.#client = client;
    this.#reader = new SecretsManagerSecretStore({ client, ttlMs: 0 });
  }

  get(name: string): Promise<string> {
    return this.#reader.get(name);
  }

  async set(name: string, value: Record<string, unknown>): Promise<void> {
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
