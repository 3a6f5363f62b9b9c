import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The onboarding link (docs/onboarding.md, "The link"): `<tenant>.<sealed>.<mac>`. `sealed` is
 * the mailbox, a random link id and the expiry, encrypted (AES-256-GCM) so the address of the
 * mailbox is not readable from the URL, a browser history or a proxy log; `mac` is HMAC-SHA256
 * over the tenant and `sealed` under the tenant's link key, a secret that never leaves the secret
 * store (the encryption key is derived from it). The link carries no OAuth token, code or secret:
 * holding it lets one connect that one mailbox once.
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

const DOMAIN = "pop2gmail-invite-v2\n";
const MAX_TOKEN_LENGTH = 1024;
const TENANT = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** Mints a link token for `mailboxId`, valid until `expiresAt`. */
export function signInvite(
  key: Buffer,
  claims: Omit<InviteClaims, "linkId"> & { linkId?: string },
): { token: string; claims: InviteClaims } {
  const full: InviteClaims = { ...claims, linkId: claims.linkId ?? randomBytes(12).toString("base64url") };
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", derivedKey(key, "invite-seal"), iv);
  cipher.setAAD(Buffer.from(full.tenant));
  const body = Buffer.concat([
    cipher.update(JSON.stringify({ m: full.mailboxId, n: full.linkId, x: full.expiresAt })),
    cipher.final(),
  ]);
  const sealed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  return { token: `${full.tenant}.${sealed}.${mac(key, full.tenant, sealed)}`, claims: full };
}

/**
 * Checks a token for `tenant` at `now`. A link naming another tenant is refused as foreign before
 * any key is used; for this tenant the MAC is checked before anything sealed is opened.
 */
export function verifyInvite(
  key: Buffer,
  tenant: string,
  token: string,
  now: number,
): { ok: true; claims: InviteClaims } | { ok: false; problem: InviteProblem } {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, problem: "malformed" };
  const [linkTenant, sealed, signature, extra] = token.split(".");
  if (
    linkTenant === undefined ||
    !TENANT.test(linkTenant) ||
    sealed === undefined ||
    sealed === "" ||
    signature === undefined ||
    extra !== undefined
  )
    return { ok: false, problem: "malformed" };
  if (linkTenant !== tenant) return { ok: false, problem: "foreign-tenant" };
  const expected = Buffer.from(mac(key, tenant, sealed));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, problem: "tampered" };
  const claims = unseal(key, tenant, sealed);
  if (claims === undefined) return { ok: false, problem: "malformed" };
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

function mac(key: Buffer, tenant: string, sealed: string): string {
  return createHmac("sha256", key).update(DOMAIN).update(`${tenant}.${sealed}`).digest("base64url");
}

function unseal(key: Buffer, tenant: string, sealed: string): InviteClaims | undefined {
  try {
    const raw = Buffer.from(sealed, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", derivedKey(key, "invite-seal"), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(tenant));
    decipher.setAuthTag(raw.subarray(12, 28));
    const json = JSON.parse(
      Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8"),
    ) as Record<string, unknown>;
    if (typeof json.m !== "string" || typeof json.n !== "string" || typeof json.x !== "number")
      return undefined;
    return { tenant, mailboxId: json.m, linkId: json.n, expiresAt: json.x };
  } catch {
    return undefined;
  }
}
