import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { MailboxConfig } from "../../config/tenant-config";
import { derivedKey, type InviteClaims, type InviteProblem, verifyInvite } from "../../core/invite-link";
import type { Clock } from "../../ports/clock";
import type { SecretStore } from "../../ports/secret-store";
import {
  consentUrl,
  exchangeCode,
  type GoogleConnectionCheck,
  type GoogleOAuthEndpoints,
  pkcePair,
  revokeToken,
} from "./google-oauth";
import {
  escapeHtml,
  type MailboxStatusView,
  page,
  postButton,
  problemPage,
  STYLE_SHEET,
  statusSection,
} from "./onboarding-pages";
import { type Language, pickLanguage, STRINGS, type Strings } from "./onboarding-strings";

/** A secret store the onboarding handler may also write (only the Google secrets of its tenant). */
export interface WritableSecretStore extends SecretStore {
  set(name: string, value: Record<string, unknown>): Promise<void>;
}

/** The tenant's onboarding secret: the link key and the OAuth client of type "Web application". */
export interface OnboardingSecret {
  /** base64 of at least 32 random bytes; signs the links, keys the CSRF tokens and the sign-in cookie. */
  readonly linkKey: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
}

/** What the handler needs; built once per process (Node: `pop2gmail serve`; Lambda: module load). */
export interface OnboardingDeps {
  readonly tenant: string;
  readonly mailboxes: readonly MailboxConfig[];
  readonly google: GoogleOAuthEndpoints;
  /**
   * Origin the browser reaches this handler at; the OAuth redirect is `<publicUrl>/oauth/callback`.
   * A function where it is known only per request (a Lambda Function URL's own domain).
   */
  readonly publicUrl: string | ((c: Context) => string);
  readonly secrets: WritableSecretStore;
  /** Name of the secret holding {@link OnboardingSecret}. */
  readonly onboardingSecret: string;
  readonly status: (mailboxId: string) => Promise<MailboxStatusView>;
  readonly checkGoogle: (mailbox: MailboxConfig) => Promise<GoogleConnectionCheck>;
  readonly clock: Clock;
  /** Who is calling, for the rate limit (the client address). */
  readonly clientKey: (c: Context) => string;
  /** Structured log lines: tenant, mailbox, link id, outcome; never a token, code or key. */
  readonly log?: (event: Record<string, string | number | boolean>) => void;
  readonly timeZone?: string;
  /** Callback attempts per client per minute, and for everyone per minute. */
  readonly rateLimit?: { readonly perClient: number; readonly total: number };
}

/**
 * What the onboarding handler keeps in a mailbox's Google secret besides the credentials the
 * pipeline reads (`clientId`, `clientSecret`, `refreshToken`): which links were used, and when
 * the mailbox was connected or disconnected. After a disconnect the credentials are gone, so the
 * copier stops importing (its import fails as a configuration fault, spends no attempt, deletes
 * nothing: docs/onboarding.md).
 */
interface GoogleSecretRecord {
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  onboarding?: {
    usedLinks?: string[];
    connectedAt?: number;
    account?: string;
    disconnectedAt?: number;
  };
}

/**
 * The secret holding a tenant's {@link OnboardingSecret}: `<tenant>/onboarding` in the local
 * credentials file, `pop2gmail/<tenant>/onboarding` on AWS (inside the tenant's secret prefix).
 */
export function onboardingSecretName(tenant: string, where: "local" | "aws"): string {
  return where === "aws" ? `pop2gmail/${tenant}/onboarding` : `${tenant}/onboarding`;
}

/**
 * The tenant's onboarding secret reference: the config's `onboardingSecret` (e.g. a key of the one
 * tenant secret, docs/deploy.md step 3), else {@link onboardingSecretName}.
 */
export function onboardingSecretOf(
  config: { readonly tenant: string; readonly onboardingSecret?: string | undefined },
  where: "local" | "aws",
): string {
  return config.onboardingSecret ?? onboardingSecretName(config.tenant, where);
}

const SIGN_IN_COOKIE = "p2g_signin";
const CSRF_COOKIE = "p2g_csrf";
const SIGN_IN_LIFETIME_MS = 10 * 60_000;
const MAX_USED_LINKS = 100;

/**
 * The onboarding web handler (docs/onboarding.md): the link page, Google's consent with PKCE and
 * `state` bound to the link, the callback that stores the refresh token in the mailbox's Google
 * secret, the status view and Disconnect. One Hono app for `pop2gmail serve` and the Lambda.
 */
export function createOnboardingApp(deps: OnboardingDeps): Hono {
  const app = new Hono();
  const limiter = new FixedWindowLimiter(deps.clock, deps.rateLimit ?? { perClient: 10, total: 120 });
  const origin = (c: Context) => (typeof deps.publicUrl === "string" ? deps.publicUrl : deps.publicUrl(c));
  // Cookies are Secure and HSTS is sent whenever the browser reaches us over HTTPS.
  const isSecure = (c: Context) => origin(c).startsWith("https:");
  const redirectUriOf = (c: Context) => new URL("/oauth/callback", origin(c)).href;
  const log = deps.log ?? (() => {});

  app.use("*", async (c, next) => {
    await next();
    const authorizeOrigin = new URL(deps.google.authorizeUrl).origin;
    c.header(
      "Content-Security-Policy",
      `default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' ${authorizeOrigin}`,
    );
    c.header("X-Frame-Options", "DENY");
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Cache-Control", "no-store");
    c.header("Cross-Origin-Opener-Policy", "same-origin");
    if (isSecure(c)) c.header("Strict-Transport-Security", "max-age=31536000");
  });

  app.get("/assets/style.css", (c) => {
    c.header("Content-Type", "text/css; charset=utf-8");
    return c.body(STYLE_SHEET);
  });

  app.get("/o/:token", async (c) => {
    const { lang, s } = language(c);
    const opened = await openLink(c.req.param("token"));
    if (!opened.ok) return refuse(c, lang, s, opened.problem);
    const { claims, mailbox, record } = opened;
    const csrf = csrfFor(c, opened.key, claims);
    const intro = `<p class="lead">${escapeHtml(s.intro({ pop3: mailbox.id, gmail: mailbox.gmail.user }))}</p>`;
    const action = (verb: string) => `/o/${c.req.param("token")}/${verb}`;
    if (record.refreshToken !== undefined) {
      const verdict = `${intro}<p class="ok" data-state="connected">${escapeHtml(s.connectedAs({ account: record.onboarding?.account ?? mailbox.gmail.user }))}</p>`;
      return c.html(await connectedPage(lang, s, mailbox, verdict, action("disconnect"), csrf));
    }
    if (record.onboarding?.usedLinks?.includes(claims.linkId)) {
      return c.html(
        page(
          lang,
          s.disconnectedTitle,
          `${intro}<p class="warn" data-state="disconnected">${escapeHtml(s.disconnectedBody)}</p><p>${escapeHtml(s.newLinkNeeded)}</p>`,
        ),
      );
    }
    return c.html(
      page(
        lang,
        s.title,
        `${intro}<ol>${s.whatItDoes.map((line) => `<li>${escapeHtml(line)}</li>`).join("")}</ol>
${postButton(action("connect"), csrf, s.connect, "primary")}
<p class="muted">${escapeHtml(s.connectNote)}</p>`,
      ),
    );
  });

  app.post("/o/:token/connect", async (c) => {
    const { lang, s } = language(c);
    const opened = await openPost(c, lang, s);
    if (opened instanceof Response) return opened;
    const { claims, mailbox, record, key } = opened;
    if (record.refreshToken !== undefined || record.onboarding?.usedLinks?.includes(claims.linkId))
      return refuse(c, lang, s, "used", 409);
    const client = await onboardingSecret();
    if (client.clientId === undefined || client.clientSecret === undefined)
      return refuse(c, lang, s, "exchange-failed", 500);
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(24).toString("base64url");
    const sealed = seal(derivedKey(key, "sign-in-cookie"), {
      state,
      verifier,
      token: c.req.param("token"),
      expiresAt: deps.clock.now() + SIGN_IN_LIFETIME_MS,
    });
    setCookie(c, SIGN_IN_COOKIE, sealed, {
      httpOnly: true,
      secure: isSecure(c),
      // Lax: the cookie must come along on Google's top-level redirect back to the callback.
      sameSite: "Lax",
      path: "/oauth",
      maxAge: SIGN_IN_LIFETIME_MS / 1000,
    });
    log({
      event: "onboarding.consent-started",
      tenant: deps.tenant,
      mailboxId: mailbox.id,
      linkId: claims.linkId,
    });
    return c.redirect(
      consentUrl(deps.google, {
        clientId: client.clientId,
        redirectUri: redirectUriOf(c),
        state,
        challenge,
        loginHint: mailbox.gmail.user,
      }),
      303,
    );
  });

  app.get("/oauth/callback", async (c) => {
    const { lang, s } = language(c);
    if (!limiter.allow(deps.clientKey(c))) return refuse(c, lang, s, "rate-limited", 429);
    const cookie = getCookie(c, SIGN_IN_COOKIE);
    // One use: whatever happens next, this sign-in is over.
    deleteCookie(c, SIGN_IN_COOKIE, { path: "/oauth", secure: isSecure(c), httpOnly: true, sameSite: "Lax" });
    const key = await linkKey().catch(() => undefined);
    const signIn =
      cookie === undefined || key === undefined
        ? undefined
        : unseal(derivedKey(key, "sign-in-cookie"), cookie);
    const state = c.req.query("state") ?? "";
    if (signIn === undefined || signIn.expiresAt <= deps.clock.now() || !sameText(state, signIn.state))
      return refuse(c, lang, s, "sign-in-expired", 400);
    const opened = await openLink(signIn.token);
    if (!opened.ok) return refuse(c, lang, s, opened.problem);
    const { claims, mailbox, record } = opened;
    if (record.refreshToken !== undefined || record.onboarding?.usedLinks?.includes(claims.linkId))
      return refuse(c, lang, s, "used", 409);
    const code = c.req.query("code");
    if (c.req.query("error") !== undefined || code === undefined) {
      log({
        event: "onboarding.consent-refused",
        tenant: deps.tenant,
        mailboxId: mailbox.id,
        linkId: claims.linkId,
      });
      return refuse(c, lang, s, "denied", 400);
    }
    const client = await onboardingSecret();
    if (client.clientId === undefined || client.clientSecret === undefined)
      return refuse(c, lang, s, "exchange-failed", 500);
    const exchanged = await exchangeCode(deps.google, {
      code,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      redirectUri: redirectUriOf(c),
      verifier: signIn.verifier,
    });
    if (!exchanged.ok) {
      log({
        event: "onboarding.exchange-failed",
        tenant: deps.tenant,
        mailboxId: mailbox.id,
        linkId: claims.linkId,
        reason: exchanged.reason,
      });
      return refuse(c, lang, s, "exchange-failed", 502);
    }
    await deps.secrets.set(mailbox.gmail.credentialsSecret, {
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      refreshToken: exchanged.refreshToken,
      onboarding: {
        usedLinks: [...(record.onboarding?.usedLinks ?? []), claims.linkId].slice(-MAX_USED_LINKS),
        connectedAt: deps.clock.now(),
      },
    });
    const check = await deps.checkGoogle(mailbox);
    if (check.ok || check.problem === "account-differs") {
      const stored = await readRecord(mailbox);
      await deps.secrets.set(mailbox.gmail.credentialsSecret, {
        ...stored,
        onboarding: { ...stored.onboarding, account: check.account },
      });
    }
    log({
      event: "onboarding.connected",
      tenant: deps.tenant,
      mailboxId: mailbox.id,
      linkId: claims.linkId,
      checkOk: check.ok,
    });
    const verdict = check.ok
      ? `<p class="ok" data-check="ok">${escapeHtml(s.checkOk({ account: check.account }))}</p>`
      : `<p class="warn" data-check="${check.problem}">${escapeHtml(
          check.problem === "account-differs"
            ? s.checkAccountDiffers({ account: check.account, gmail: mailbox.gmail.user })
            : check.problem === "no-import-scope"
              ? s.checkNoImportScope
              : s.checkFailed({ reason: check.reason }),
        )}</p>`;
    const csrf = csrfFor(c, opened.key, claims);
    return c.html(await connectedPage(lang, s, mailbox, verdict, `/o/${signIn.token}/disconnect`, csrf));
  });

  app.post("/o/:token/disconnect", async (c) => {
    const { lang, s } = language(c);
    const opened = await openPost(c, lang, s);
    if (opened instanceof Response) return opened;
    const { claims, mailbox, record } = opened;
    // Stop imports first: without the refresh token the copier cannot import, whatever Google says.
    await deps.secrets.set(mailbox.gmail.credentialsSecret, {
      onboarding: {
        usedLinks: [...new Set([...(record.onboarding?.usedLinks ?? []), claims.linkId])].slice(
          -MAX_USED_LINKS,
        ),
        disconnectedAt: deps.clock.now(),
      },
    });
    const revoked =
      record.refreshToken === undefined ? true : await revokeToken(deps.google, record.refreshToken);
    log({
      event: "onboarding.disconnected",
      tenant: deps.tenant,
      mailboxId: mailbox.id,
      linkId: claims.linkId,
      revoked,
    });
    return c.html(
      page(
        lang,
        s.disconnectedTitle,
        `<p class="ok" data-state="disconnected">${escapeHtml(s.disconnectedBody)}</p>
${revoked ? "" : `<p class="warn">${escapeHtml(s.revokeFailed)}</p>`}
<p>${escapeHtml(s.newLinkNeeded)}</p>`,
      ),
    );
  });

  app.notFound((c) => {
    const { lang, s } = language(c);
    return c.html(problemPage(lang, s, "not-found"), 404);
  });

  app.onError((error, c) => {
    log({ event: "onboarding.error", tenant: deps.tenant, error: error.name });
    const { lang, s } = language(c);
    return c.html(problemPage(lang, s, "exchange-failed"), 500);
  });

  function refuse(
    c: Context,
    lang: Language,
    s: Strings,
    problem: keyof Strings["problems"],
    status: 400 | 403 | 404 | 409 | 410 | 429 | 500 | 502 = problem === "expired" ? 410 : 400,
  ) {
    log({ event: "onboarding.refused", tenant: deps.tenant, problem });
    return c.html(problemPage(lang, s, problem), status);
  }

  /** A POST's link, checked like a GET's, plus the rate limit and the CSRF token. */
  async function openPost(c: Context, lang: Language, s: Strings) {
    if (!limiter.allow(deps.clientKey(c))) return refuse(c, lang, s, "rate-limited", 429);
    const opened = await openLink(c.req.param("token") ?? "");
    if (!opened.ok) return refuse(c, lang, s, opened.problem);
    if (!(await csrfValid(c, opened.key, opened.claims))) return refuse(c, lang, s, "csrf", 403);
    return opened;
  }

  /** The connected view: a verdict line, the status, Disconnect. */
  async function connectedPage(
    lang: Language,
    s: Strings,
    mailbox: MailboxConfig,
    verdict: string,
    disconnectAction: string,
    csrf: string,
  ): Promise<string> {
    const status = await deps.status(mailbox.id);
    return page(
      lang,
      s.connectedTitle,
      `${verdict}
${statusSection(lang, s, status, deps.timeZone)}
<h2>${escapeHtml(s.disconnect)}</h2>
<p class="muted">${escapeHtml(s.disconnectNote)}</p>
${postButton(disconnectAction, csrf, s.disconnect, "danger")}`,
    );
  }

  async function onboardingSecret(): Promise<OnboardingSecret> {
    return JSON.parse(await deps.secrets.get(deps.onboardingSecret)) as OnboardingSecret;
  }

  async function linkKey(): Promise<Buffer> {
    const key = Buffer.from((await onboardingSecret()).linkKey, "base64");
    if (key.length < 32) throw new Error("the onboarding link key is shorter than 32 bytes");
    return key;
  }

  async function readRecord(mailbox: MailboxConfig): Promise<GoogleSecretRecord> {
    try {
      return JSON.parse(await deps.secrets.get(mailbox.gmail.credentialsSecret)) as GoogleSecretRecord;
    } catch {
      return {};
    }
  }

  async function openLink(
    token: string,
  ): Promise<
    | { ok: true; key: Buffer; claims: InviteClaims; mailbox: MailboxConfig; record: GoogleSecretRecord }
    | { ok: false; problem: InviteProblem | "unknown-mailbox" }
  > {
    const key = await linkKey();
    const verified = verifyInvite(key, deps.tenant, token, deps.clock.now());
    if (!verified.ok) return verified;
    const mailbox = deps.mailboxes.find((m) => m.id === verified.claims.mailboxId);
    // A Google secret shared with another mailbox would connect them all: not by link.
    const shared = deps.mailboxes.some(
      (m) => m !== mailbox && m.gmail.credentialsSecret === mailbox?.gmail.credentialsSecret,
    );
    if (mailbox === undefined || mailbox.gmail.auth !== "oauth" || shared)
      return { ok: false, problem: "unknown-mailbox" };
    return { ok: true, key, claims: verified.claims, mailbox, record: await readRecord(mailbox) };
  }

  /** Double-submit CSRF token: a random cookie, and its MAC bound to the link in the form. */
  function csrfFor(c: Context, key: Buffer, claims: InviteClaims): string {
    let nonce = getCookie(c, CSRF_COOKIE);
    if (nonce === undefined || !/^[A-Za-z0-9_-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(18).toString("base64url");
      setCookie(c, CSRF_COOKIE, nonce, {
        httpOnly: true,
        secure: isSecure(c),
        sameSite: "Strict",
        path: "/o",
      });
    }
    return csrfMac(key, nonce, claims);
  }

  async function csrfValid(c: Context, key: Buffer, claims: InviteClaims): Promise<boolean> {
    const nonce = getCookie(c, CSRF_COOKIE);
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const given = form.csrf;
    return nonce !== undefined && typeof given === "string" && sameText(given, csrfMac(key, nonce, claims));
  }

  function language(c: Context): { lang: Language; s: Strings } {
    const lang = pickLanguage(c.req.header("accept-language"));
    return { lang, s: STRINGS[lang] };
  }

  return app;
}

function csrfMac(key: Buffer, nonce: string, claims: InviteClaims): string {
  return createHmac("sha256", derivedKey(key, "csrf"))
    .update(`${nonce}\n${claims.linkId}`)
    .digest("base64url");
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

interface SignIn {
  readonly state: string;
  readonly verifier: string;
  readonly token: string;
  readonly expiresAt: number;
}

/** AES-256-GCM: the PKCE verifier rides in the browser's cookie unreadable and unforgeable. */
function seal(key: Buffer, value: SignIn): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

function unseal(key: Buffer, text: string): SignIn | undefined {
  try {
    const raw = Buffer.from(text, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const json = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    return JSON.parse(json) as SignIn;
  } catch {
    return undefined;
  }
}

/** Per-minute windows, per client and in total (on Lambda: per warm instance). */
class FixedWindowLimiter {
  #window = -1;
  #total = 0;
  readonly #perClient = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly limits: { readonly perClient: number; readonly total: number },
  ) {}

  allow(client: string): boolean {
    const window = Math.floor(this.clock.now() / 60_000);
    if (window !== this.#window) {
      this.#window = window;
      this.#total = 0;
      this.#perClient.clear();
    }
    const count = (this.#perClient.get(client) ?? 0) + 1;
    this.#perClient.set(client, count);
    this.#total++;
    return count <= this.limits.perClient && this.#total <= this.limits.total;
  }
}
