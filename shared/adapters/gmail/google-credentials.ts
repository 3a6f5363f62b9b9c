import * as z from "zod";
import { ConfigError } from "../../core/errors";

const oauthSecretSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  refreshToken: z.string().min(1),
});

const serviceAccountSecretSchema = z.object({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().optional(),
});

/** Credentials for one Gmail user, as read from the secret named by `gmail.credentialsSecret`. */
export type GoogleCredentials =
  | {
      readonly kind: "oauth";
      readonly clientId: string;
      readonly clientSecret: string;
      readonly refreshToken: string;
    }
  | {
      readonly kind: "service-account";
      readonly clientEmail: string;
      readonly privateKey: string;
      readonly privateKeyId?: string;
    };

/**
 * Parses the secret value. The error names the secret and the missing fields, never the value.
 * oauth: `{"clientId","clientSecret","refreshToken"}`; service-account: Google's key JSON.
 */
export function parseGoogleCredentials(
  secretName: string,
  auth: "oauth" | "service-account",
  value: string,
): GoogleCredentials {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw new ConfigError(secretName, `the secret ${secretName} is not JSON`, {
      hint: "Store the Google credentials as JSON (run `pop2gmail auth google <tenant>`).",
    });
  }
  if (auth === "oauth") {
    if (isDisconnected(json)) {
      // The mailbox's owner pressed Disconnect on the onboarding page (docs/onboarding.md):
      // nothing is imported, so nothing is deleted from POP3, until they connect again.
      throw new ConfigError(
        secretName,
        `Gmail was disconnected by the mailbox's owner (${secretName} holds no grant)`,
        {
          hint: "Send the owner a new link to connect again: pop2gmail invite <tenant> --mailbox <id>.",
        },
      );
    }
    const parsed = oauthSecretSchema.safeParse(json);
    if (!parsed.success)
      throw invalid(secretName, parsed.error.issues, "clientId, clientSecret and refreshToken");
    return { kind: "oauth", ...parsed.data };
  }
  const parsed = serviceAccountSecretSchema.safeParse(json);
  if (!parsed.success) throw invalid(secretName, parsed.error.issues, "client_email and private_key");
  return {
    kind: "service-account",
    clientEmail: parsed.data.client_email,
    privateKey: parsed.data.private_key,
    ...(parsed.data.private_key_id === undefined ? {} : { privateKeyId: parsed.data.private_key_id }),
  };
}

function isDisconnected(json: unknown): boolean {
  if (typeof json !== "object" || json === null || "refreshToken" in json) return false;
  const onboarding = (json as { onboarding?: { disconnectedAt?: unknown } }).onboarding;
  return typeof onboarding?.disconnectedAt === "number";
}

function invalid(secretName: string, issues: readonly z.core.$ZodIssue[], expected: string): ConfigError {
  const fields = issues.map((i) => i.path.join(".")).join(", ");
  return new ConfigError(secretName, `the secret ${secretName} lacks or mistypes: ${fields}`, {
    hint: `The secret must be JSON with ${expected}.`,
  });
}
