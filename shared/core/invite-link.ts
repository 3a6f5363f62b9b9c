import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The onboarding link (docs/onboarding.md, "The link"): `<payload>.<mac>`, both base64url.
 * The payload names the tenant, the mailbox, a random link id and the expiry; the MAC is
 * HMAC-SHA256 under the tenant's link key, a secret that never leaves the secret store. The link
 * carries no OAuth token, code or secret: holding it lets one connect that one mailbox once.
 */
export interface InviteClaims {
  /** Tenant the link was issued by. */
  readonly tenant: string;
  readonly mailboxId: string;
  /** Random id of this link: what "used once" and "disconnected" are recorded against. */
  readonly linkId: string;
  /** Epoch milliseconds after which the link opens nothing. */
  readonly expiresAt: number;
}

/** Why a link was refused; each has its own page, none changes anything. */
export type InviteProblem = "malformed" | "tampered" | "expired" | "foreign-tenant";

const DOMAIN = "pop2gmail-invite-v1\n";
const MAX_TOKEN_LENGTH = 1024;

/** Mints a link token for `mailboxId`, valid until `expiresAt`. */
export function signInvite(
  key: Buffer,
  claims: Omit<InviteClaims, "linkId"> & { linkId?: string },
): { token: string; claims: InviteClaims } {
  const full: InviteClaims = { ...claims, linkId: claims.linkId ?? randomBytes(12).toString("base64url") };
  const payload = Buffer.from(
    JSON.stringify({ v: 1, t: full.tenant, m: full.mailboxId, n: full.linkId, x: full.expiresAt }),
  ).toString("base64url");
  return { token: `${payload}.${mac(key, payload)}`, claims: full };
}

/**
 * Checks a token for `tenant` at `now`. The MAC is checked before anything in the payload is
 * believed; a link another tenant signed fails it too and is told apart only by its claimed tenant.
 */
export function verifyInvite(
  key: Buffer,
  tenant: string,
  token: string,
  now: number,
): { ok: true; claims: InviteClaims } | { ok: false; problem: InviteProblem } {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, problem: "malformed" };
  const [payload, signature, extra] = token.split(".");
  if (payload === undefined || signature === undefined || extra !== undefined || payload === "")
    return { ok: false, problem: "malformed" };
  const claims = decode(payload);
  if (claims === undefined) return { ok: false, problem: "malformed" };
  const expected = Buffer.from(mac(key, payload));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, problem: claims.tenant === tenant ? "tampered" : "foreign-tenant" };
  }
  if (claims.tenant !== tenant) return { ok: false, problem: "foreign-tenant" };
  if (now >= claims.expiresAt) return { ok: false, problem: "expired" };
  return { ok: true, claims };
}

/** `7d`, `12h`, `30m` -> milliseconds; undefined for anything else (at most 90 days). */
export function parseLinkLifetime(text: string): number | undefined {
  const match = /^([1-9]\d{0,3})([dhm])$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[match[2] as "d" | "h" | "m"];
  const ms = Number(match[1]) * unit;
  return ms <= 90 * 86_400_000 ? ms : undefined;
}

/** A key derived from the link key for another purpose (CSRF, the sealed sign-in cookie). */
export function derivedKey(key: Buffer, purpose: string): Buffer {
  return createHmac("sha256", key).update(`pop2gmail-${purpose}`).digest();
}

function mac(key: Buffer, payload: string): string {
  return createHmac("sha256", key).update(DOMAIN).update(payload).digest("base64url");
}

function decode(payload: string): InviteClaims | undefined {
  try {
    const json = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
    if (
      json.v !== 1 ||
      typeof json.t !== "string" ||
      typeof json.m !== "string" ||
      typeof json.n !== "string" ||
      typeof json.x !== "number"
    )
      return undefined;
    return { tenant: json.t, mailboxId: json.m, linkId: json.n, expiresAt: json.x };
  } catch {
    return undefined;
  }
}
