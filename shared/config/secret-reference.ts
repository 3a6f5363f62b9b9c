import { ConfigError } from "../core/errors";

/**
 * A secret reference as the tenant config writes it (`pop3.passwordSecret`,
 * `gmail.credentialsSecret`): either a whole secret (`pop2gmail/acme/info-pop3`) or one key of
 * the JSON object a secret holds (`pop2gmail/acme/credentials#info@acme.it`), so one secret per
 * tenant can hold every mailbox's credentials (docs/deploy.md, section 2). Secrets Manager never
 * allows `#` in a secret name, so the first `#` always separates name and key.
 */
export interface SecretReference {
  /** The secret's name (a Secrets Manager name on AWS; a top-level key of credentials.json locally). */
  readonly secret: string;
  /** The key inside the secret's JSON object, or undefined for the whole secret. */
  readonly key: string | undefined;
}

/** The character that separates a secret's name from the key inside it. */
export const SECRET_KEY_SEPARATOR = "#";

/** Splits `name#key` (or a plain `name`) into its parts; the key may itself contain `#`. */
export function parseSecretReference(reference: string): SecretReference {
  const at = reference.indexOf(SECRET_KEY_SEPARATOR);
  if (at < 0) return { secret: reference, key: undefined };
  return { secret: reference.slice(0, at), key: reference.slice(at + 1) };
}

/** A reference as a person reads it: `"name"`, or `key "k" of "name"`. */
export function describeSecretReference(reference: string): string {
  const { secret, key } = parseSecretReference(reference);
  return key === undefined ? `"${secret}"` : `key "${key}" of "${secret}"`;
}

/** Why `reference` is malformed (an empty name or an empty key), or undefined when it is not. */
export function secretReferenceProblem(reference: string): string | undefined {
  const { secret, key } = parseSecretReference(reference);
  if (secret === "") return `secret reference "${reference}" has no secret name before '#'`;
  if (key === "") return `secret reference "${reference}" has no key after '#'`;
  return undefined;
}

/** The secret names (before `#`) the given references use, deduplicated and sorted. */
export function secretNamesOf(references: Iterable<string>): string[] {
  return [...new Set([...references].map((r) => parseSecretReference(r).secret))].sort();
}

/**
 * The value `reference` names inside `whole`, the secret's full value: `whole` itself for a
 * plain name; for `name#key` the key's value of the JSON object, a string as it is and an object
 * as its JSON (a Google secret's object). Errors name the secret and the key, never a value: a
 * parse error's message may quote the secret's text, so only the fact is kept.
 */
export function valueAtReference(reference: string, whole: string): string {
  const { secret, key } = parseSecretReference(reference);
  if (key === undefined) return whole;
  let json: unknown;
  try {
    json = JSON.parse(whole);
  } catch {
    json = undefined;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(reference, `secret ${secret} is not a JSON object, so it has no key ${key}`, {
      hint: `Store a JSON object in ${secret}: { "${key}": ... } (docs/deploy.md, section 2).`,
    });
  }
  const value = (json as Record<string, unknown>)[key];
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  throw new ConfigError(reference, `secret ${secret} has no key ${key}`, {
    hint: `Add "${key}" to the JSON object in ${secret} (docs/deploy.md, section 2).`,
  });
}

/**
 * `whole` (the secret's current value, undefined when it has none yet) with `key` set to
 * `value`: the read-modify-write of a shared secret. Other keys are kept as they are.
 */
export function withKeySet(
  secret: string,
  key: string,
  whole: string | undefined,
  value: string | Record<string, unknown>,
): Record<string, unknown> {
  let json: unknown = {};
  if (whole !== undefined && whole.trim() !== "") {
    try {
      json = JSON.parse(whole);
    } catch {
      json = undefined;
    }
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(secret, `secret ${secret} is not a JSON object, so key ${key} cannot be written`, {
      hint: `Store a JSON object in ${secret} (at least {}) (docs/deploy.md, section 2).`,
    });
  }
  return { ...(json as Record<string, unknown>), [key]: value };
}
