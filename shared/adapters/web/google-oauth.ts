import { createHash, randomBytes } from "node:crypto";
import type { MailboxConfig } from "../../config/tenant-config";
import { Pop2GmailError } from "../../core/errors";
import type { Clock } from "../../ports/clock";
import type { SecretStore } from "../../ports/secret-store";
import { GMAIL_READ_SCOPES, GoogleAccessTokens } from "../gmail/google-access-tokens";

/** Google's endpoints for the web flow; tests point them at test/fakes/google-oauth-stand-in.ts. */
export interface GoogleOAuthEndpoints {
  readonly authorizeUrl: string;
  readonly tokenUrl: string;
  readonly revokeUrl: string;
  readonly apiBaseUrl: string;
}

/** Google's endpoints, unless the tenant config's `google` section names others. */
export function googleEndpoints(google: {
  readonly apiBaseUrl: string;
  readonly tokenUrl: string;
  readonly authorizeUrl?: string | undefined;
  readonly revokeUrl?: string | undefined;
}): GoogleOAuthEndpoints {
  return {
    apiBaseUrl: google.apiBaseUrl,
    tokenUrl: google.tokenUrl,
    authorizeUrl: google.authorizeUrl ?? "https://accounts.google.com/o/oauth2/v2/auth",
    revokeUrl: google.revokeUrl ?? "https://oauth2.googleapis.com/revoke",
  };
}

/**
 * The scopes the pipeline needs and no more: `gmail.insert` for `messages.import`, `gmail.labels`
 * for the mailbox label (docs/pipeline.md). No read scope: an uncertain import is re-sent and
 * Gmail merges it by Message-ID. No `openid`/`email`: the account is read from the Gmail profile.
 */
export const ONBOARDING_SCOPES = [
  "https://www.googleapis.com/auth/gmail.insert",
  "https://www.googleapis.com/auth/gmail.labels",
] as const;

/** A PKCE pair (RFC 7636, S256). */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** Google's consent URL for an authorization code with PKCE and a refresh token. */
export function consentUrl(
  endpoints: GoogleOAuthEndpoints,
  request: { clientId: string; redirectUri: string; state: string; challenge: string; loginHint: string },
): string {
  const url = new URL(endpoints.authorizeUrl);
  for (const [name, value] of Object.entries({
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    response_type: "code",
    scope: ONBOARDING_SCOPES.join(" "),
    access_type: "offline",
    prompt: "consent",
    include_granted_scopes: "false",
    login_hint: request.loginHint,
    state: request.state,
    code_challenge: request.challenge,
    code_challenge_method: "S256",
  })) {
    url.searchParams.set(name, value);
  }
  return url.href;
}

/** Exchanges an authorization code; the refresh token, or why there is none (no token text). */
export async function exchangeCode(
  endpoints: GoogleOAuthEndpoints,
  request: { code: string; clientId: string; clientSecret: string; redirectUri: string; verifier: string },
): Promise<{ ok: true; refreshToken: string; scope: string } | { ok: false; reason: string }> {
  let response: Response;
  try {
    response = await fetch(endpoints.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: request.code,
        client_id: request.clientId,
        client_secret: request.clientSecret,
        redirect_uri: request.redirectUri,
        code_verifier: request.verifier,
      }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.name : "network error" };
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || typeof body.refresh_token !== "string") {
    // Only Google's error code: its description could echo what we sent.
    return { ok: false, reason: typeof body.error === "string" ? body.error : `HTTP ${response.status}` };
  }
  return {
    ok: true,
    refreshToken: body.refresh_token,
    scope: typeof body.scope === "string" ? body.scope : "",
  };
}

/** Revokes a refresh token at Google (RFC 7009); false when Google could not be reached or refused. */
export async function revokeToken(endpoints: GoogleOAuthEndpoints, token: string): Promise<boolean> {
  try {
    const response = await fetch(endpoints.revokeUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }),
      signal: AbortSignal.timeout(15_000),
    });
    // 400 invalid_token: already revoked (the user removed access at Google) -- the goal holds.
    return response.ok || response.status === 400;
  } catch {
    return false;
  }
}

/** What the Google half of `check` found, in a form the page words itself. */
export type GoogleConnectionCheck =
  | { readonly ok: true; readonly account: string; readonly canLookUp: boolean }
  | { readonly ok: false; readonly problem: "account-differs"; readonly account: string }
  | { readonly ok: false; readonly problem: "no-import-scope" }
  | { readonly ok: false; readonly problem: "failed"; readonly reason: string };

/**
 * The Google half of `pop2gmail check` for one mailbox: the stored grant refreshes, it may
 * import, and it belongs to the configured Gmail address (the Gmail profile of `me`).
 */
export async function checkGoogleConnection(
  deps: { endpoints: GoogleOAuthEndpoints; secrets: SecretStore; clock: Clock },
  mailbox: MailboxConfig,
): Promise<GoogleConnectionCheck> {
  const tokens = new GoogleAccessTokens({
    tokenUrl: deps.endpoints.tokenUrl,
    secrets: deps.secrets,
    clock: deps.clock,
    timeoutMs: 15_000,
    serviceAccountScopes: ONBOARDING_SCOPES,
  });
  try {
    const token = await tokens.get(mailbox.gmail);
    const scopes = [...token.scopes];
    const importScopes = ["https://www.googleapis.com/auth/gmail.insert", "https://mail.google.com/"];
    if (scopes.length > 0 && !scopes.some((s) => importScopes.includes(s) || s.endsWith("/gmail.modify")))
      return { ok: false, problem: "no-import-scope" };
    const response = await fetch(new URL("gmail/v1/users/me/profile", deps.endpoints.apiBaseUrl), {
      headers: { authorization: `Bearer ${token.value}` },
      signal: AbortSignal.timeout(15_000),
    });
    const profile = (await response.json().catch(() => ({}))) as { emailAddress?: unknown };
    if (!response.ok || typeof profile.emailAddress !== "string")
      return { ok: false, problem: "failed", reason: `Gmail profile: HTTP ${response.status}` };
    const account = profile.emailAddress;
    if (account.toLowerCase() !== mailbox.gmail.user.toLowerCase())
      return { ok: false, problem: "account-differs", account };
    return {
      ok: true,
      account,
      canLookUp: scopes.some((s) => GMAIL_READ_SCOPES.some((r) => r === s)),
    };
  } catch (error) {
    if (error instanceof Pop2GmailError) return { ok: false, problem: "failed", reason: error.code };
    return { ok: false, problem: "failed", reason: error instanceof Error ? error.name : "error" };
  }
}
