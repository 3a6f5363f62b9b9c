/**
 * Removes credentials from a text before it is stored or logged (DESIGN.md invariant 6,
 * docs/pipeline.md "Error texts"). A server may echo the request back in its error body (the
 * `Authorization` header, a token form, a URL with `access_token=`), and error texts end up in
 * logs, events and the ledger. What it catches:
 *
 * - `Authorization:` header lines (whatever scheme), `Bearer <token>` and `Basic <base64>`;
 * - `name=value`, `name: value` and `"name": "value"` for token and secret names
 *   (access_token, refresh_token, id_token, client_secret, assertion, password, api_key, ...);
 * - Google access tokens (`ya29.`), refresh tokens (`1//`), OAuth client secrets (`GOCSPX-`),
 *   JSON Web Tokens (`eyJ...` three parts) and PEM private keys.
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}

/** The marker put where a secret was. */
export const REDACTED = "[redacted]";

const SECRET_NAMES =
  "access_token|refresh_token|id_token|client_secret|assertion|password|passwd|api_key|apikey|private_key|authorization|x-goog-api-key";

const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  // "authorization": "...", access_token=..., client_secret: ... (JSON, form, header or prose).
  [
    new RegExp(
      `((?:"|\\b)(?:${SECRET_NAMES})"?\\s*[:=]\\s*"?)(?:Bearer\\s+|Basic\\s+)?[^\\s"&,;)}\\]]+`,
      "gi",
    ),
    `$1${REDACTED}`,
  ],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/gi, `$1 ${REDACTED}`],
  [/\bya29\.[A-Za-z0-9._~+/=-]+/g, REDACTED],
  [/(^|[^A-Za-z0-9])1\/\/[A-Za-z0-9._~+/=-]{8,}/g, `$1${REDACTED}`],
  [/\bGOCSPX-[A-Za-z0-9._~+/=-]+/g, REDACTED],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
];
