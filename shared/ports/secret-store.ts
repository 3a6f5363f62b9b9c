/**
 * Resolves a secret by the name the tenant config gives (Secrets Manager on AWS; the local
 * credentials file or environment locally). Values are cached by the adapter and never logged.
 */
export interface SecretStore {
  /** The secret's string value; throws `ConfigError` naming the secret (not its value) when absent. */
  get(name: string): Promise<string>;
}
