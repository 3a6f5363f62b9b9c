import * as z from "zod";
import { parseSecretReference, secretReferenceProblem } from "./secret-reference";
import { strictObject } from "./strict-object";

/**
 * The one schema for a tenant's configuration, used by the CDK app, the Lambda functions and
 * the CLI. Every object is strict: a key we do not know is an error naming the closest valid key
 * (strict-object.ts), never silently dropped. Secret values never live here: `passwordSecret`
 * and `credentialsSecret` name a secret (a Secrets Manager name on AWS; a key in the local
 * credentials file or environment locally), or `name#key`, one key of a secret's JSON object.
 */

const id = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,30}$/,
    "use 1-31 lower-case letters, digits or '-', starting with a letter or digit",
  );

const mailboxId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/, "use letters, digits and . _ @ + - (e.g. info@acme.it)");

/** `immediately` (default), `never`, or `Nd`: keep on the server N days after import. */
export const deleteAfterSchema = z.union([
  z.literal("immediately"),
  z.literal("never"),
  z.string().regex(/^[1-9]\d{0,3}d$/, "use 'immediately', 'never' or a number of days such as '30d'"),
]);

/** Gmail's documented maximum message size for messages.import. */
export const GMAIL_MAX_MESSAGE_BYTES = 150 * 1024 * 1024;

function isControlCharacter(char: string): boolean {
  const code = char.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

/**
 * A secret reference: a secret's name, or `name#key` for one key of the JSON object a shared
 * secret holds (secret-reference.ts). Never a wildcard: on AWS the name becomes an IAM resource
 * ARN, where `*` and `?` would match other secrets (another tenant's); Secrets Manager itself
 * never allows them in names.
 */
function secretName(required: string) {
  return z
    .string()
    .min(1, required)
    .refine(
      (name) => !/[*?]/.test(parseSecretReference(name).secret),
      "a secret name must not contain '*' or '?'",
    )
    .superRefine((reference, context) => {
      const problem = secretReferenceProblem(reference);
      if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
    });
}

/** The prefix every secret of a deployed tenant must have (docs/deploy.md): `pop2gmail/<tenant>/`. */
export function tenantSecretPrefix(tenant: string): string {
  return `pop2gmail/${tenant}/`;
}

/**
 * Why `reference` may not name a secret of `tenant` on AWS, or undefined when it may: its secret
 * (the part before `#`) must be `pop2gmail/<tenant>/<rest>` with a non-empty rest, so no tenant's
 * grant can name another's secret, and the stack may grant `pop2gmail/<tenant>/*` (infra/secret-arns.ts).
 */
export function deployedSecretNameProblem(tenant: string, reference: string): string | undefined {
  // The rule is about the secret (what IAM names); the key inside it is not part of any ARN.
  const name = parseSecretReference(reference).secret;
  if (/[*?]/.test(name)) return `secret name "${name}" contains '*' or '?'`;
  const prefix = tenantSecretPrefix(tenant);
  if (!name.startsWith(prefix) || name.length === prefix.length) {
    return `secret name "${name}" must start with "${prefix}" (each tenant reads only its own secrets)`;
  }
  return undefined;
}

export const pop3Schema = strictObject({
  host: z.string().min(1, "the POP3 server's host name is required"),
  port: z.number().int().min(1).max(65535).optional(),
  /** implicit: TLS from the first byte (995); starttls: STLS on 110; none: plaintext, opt-in only. */
  tls: z.enum(["implicit", "starttls", "none"]).default("implicit"),
  /** Required with tls "none", so plaintext POP3 is never chosen by accident (invariant 6). */
  allowPlaintext: z.boolean().default(false),
  // No control characters: the name goes onto a POP3 command line (CR/LF would inject commands).
  user: z
    .string()
    .min(1, "the POP3 user name is required")
    .refine(
      (user) => ![...user].some(isControlCharacter),
      "the POP3 user name must not contain control characters",
    ),
  passwordSecret: secretName("name the secret that holds the POP3 password"),
  /** PEM file of a private CA, for hosts with their own certificate authority. */
  caFile: z.string().optional(),
  /** SHA-256 fingerprint of the server certificate (hex, colons optional) for self-signed hosts. */
  certificateSha256: z
    .string()
    .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, "give the SHA-256 fingerprint as 64 hex digits")
    .optional(),
  /** Sessions this tool may hold at once on the mailbox; many servers lock the maildrop. */
  maxSessions: z.number().int().min(1).max(10).default(1),
}).refine((p) => p.tls !== "none" || p.allowPlaintext, {
  message: "tls 'none' sends the password in clear text: set allowPlaintext: true to confirm",
  path: ["allowPlaintext"],
});

export const gmailSchema = strictObject({
  /** The Gmail or Workspace address messages are imported into. */
  user: z.email("give the Gmail address messages go to"),
  /** oauth: OAuth client + user refresh token; service-account: Workspace domain-wide delegation. */
  auth: z.enum(["oauth", "service-account"]).default("oauth"),
  credentialsSecret: secretName("name the secret that holds the Google credentials"),
  /** System labels added to every import; drop INBOX to archive directly (skipInbox). */
  labels: z.array(z.string().min(1)).default(["INBOX", "UNREAD"]),
  /** A user label per mailbox, created on first use; nested names such as "POP/info@acme.it" work. */
  mailboxLabel: z.string().min(1).optional(),
  skipInbox: z.boolean().default(false),
  neverMarkSpam: z.boolean().default(false),
  processForCalendar: z.boolean().default(true),
});

export const mailboxSchema = strictObject({
  id: mailboxId,
  pop3: pop3Schema,
  gmail: gmailSchema,
  deleteAfter: deleteAfterSchema.default("immediately"),
  /**
   * On AWS below 60 each poll is one message of the mailbox's poll chain, delayed by
   * pollSeconds; at 60 or more the keeper's tick polls it, every pollSeconds rounded up to whole
   * minutes (docs/pipeline.md "Poll chains on AWS"); locally the runtime's timer. At most 5
   * minutes, so TenantProblems' "not polled successfully for 10 minutes" sees two missed polls.
   */
  pollSeconds: z
    .number()
    .int()
    .min(10, "pollSeconds must be at least 10")
    .max(300, "pollSeconds must be at most 300 (5 minutes)")
    .default(60),
  /** Larger messages are archived and quarantined, never delivered or deleted. */
  maxMessageBytes: z.number().int().positive().max(GMAIL_MAX_MESSAGE_BYTES).default(GMAIL_MAX_MESSAGE_BYTES),
});

export const tenantConfigSchema = strictObject({
  tenant: id,
  /** Where alarms go (SNS e-mail subscription). */
  alarmEmail: z.email("give an e-mail address for alarms").optional(),
  /**
   * A CloudWatch dashboard for this tenant ($3 a month beyond the account's first three); off by
   * default: the provider stack's fleet dashboard shows every tenant (docs/deploy.md section 6).
   * Optional rather than defaulted, so configs that leave it out serialize as before.
   */
  dashboard: z.boolean().optional(),
  /**
   * Where the onboarding pages keep their web OAuth client and link key (docs/onboarding.md).
   * Default `pop2gmail/<tenant>/onboarding` on AWS, `<tenant>/onboarding` locally; a key of the
   * tenant secret (`pop2gmail/acme/credentials#onboarding`) saves a second secret.
   */
  onboardingSecret: secretName("name the secret that holds the onboarding client and link key").optional(),
  google: strictObject({
    apiBaseUrl: z.url().default("https://gmail.googleapis.com/"),
    tokenUrl: z.url().default("https://oauth2.googleapis.com/token"),
    /** Google's consent page and revocation endpoint for onboarding by link; Google's when unset (docs/onboarding.md). */
    authorizeUrl: z.url().optional(),
    revokeUrl: z.url().optional(),
    /** Quota units per minute per Gmail user: 6,000 on projects created since May 2026, else 15,000. */
    quotaUnitsPerMinute: z.number().int().positive().default(6000),
    maxConcurrentImports: z.number().int().min(1).max(50).default(4),
    /**
     * Timeout of one Gmail request without a large body (default 120 s); a request carrying a
     * body gets its size at `minUploadKiBPerSecond` more (docs/pipeline.md, "Gmail requests are bounded").
     */
    requestTimeoutSeconds: z.number().int().min(5).max(900).optional(),
    /** The slowest upload still waited for, in KiB per second (default 256). */
    minUploadKiBPerSecond: z.number().int().min(1).optional(),
  }).prefault({}),
  archive: strictObject({
    /** Move archived objects to an infrequent-access storage class after this many days. */
    infrequentAccessAfterDays: z.number().int().min(30).default(30),
    /** Delete archived objects after this many days; omit to keep forever. */
    expireAfterDays: z.number().int().positive().optional(),
    /** S3 Object Lock (compliance mode) retention for customers with a legal hold duty. */
    objectLockDays: z.number().int().positive().optional(),
  }).prefault({}),
  mailboxes: z.array(mailboxSchema).min(1, "configure at least one mailbox"),
}).refine((t) => new Set(t.mailboxes.map((m) => m.id)).size === t.mailboxes.length, {
  message: "mailbox ids must be unique",
  path: ["mailboxes"],
});

export type TenantConfig = z.infer<typeof tenantConfigSchema>;
export type MailboxConfig = z.infer<typeof mailboxSchema>;
export type Pop3Config = z.infer<typeof pop3Schema>;
export type GmailConfig = z.infer<typeof gmailSchema>;
export type DeleteAfter = z.infer<typeof deleteAfterSchema>;
