import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checkGoogleConnection, type GoogleOAuthEndpoints } from "../../shared/adapters/web/google-oauth";
import { createOnboardingApp, type WritableSecretStore } from "../../shared/adapters/web/onboarding-app";
import { pickLanguage } from "../../shared/adapters/web/onboarding-strings";
import { type MailboxConfig, tenantConfigSchema } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";
import { signInvite, verifyInvite } from "../../shared/core/invite-link";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { GoogleOAuthStandIn } from "../fakes/google-oauth-stand-in";
import { TestClock } from "../fakes/in-memory-clock";

/**
 * The onboarding handler (docs/onboarding.md) driven request by request, against the Google OAuth
 * and Gmail API stand-ins on 127.0.0.1: the flow, and each hostile case of issue 15 item 5 --
 * every refusal gets its page and changes nothing.
 */
const ACCOUNT = "mario.rossi@gmail.example";
const CLIENT = { clientId: "web-client.apps.example", clientSecret: "web-client-secret-0123" };
const PUBLIC_URL = "http://127.0.0.1:8470";

class MemorySecrets implements WritableSecretStore {
  readonly values = new Map<string, string>();
  async get(name: string): Promise<string> {
    const value = this.values.get(name);
    if (value === undefined) throw new ConfigError(name, `the secret "${name}" is not set`);
    return value;
  }
  async set(name: string, value: Record<string, unknown>): Promise<void> {
    this.values.set(name, JSON.stringify(value));
  }
}

/** Cookies as a browser keeps them for one origin (names and values only). */
class CookieJar {
  readonly #cookies = new Map<string, string>();
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      if (value === "" || /max-age=0/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join("; ");
  }
}

describe("onboarding by link: the handler", () => {
  let gmail: GmailApiStandIn;
  let google: GoogleOAuthStandIn;
  let endpoints: GoogleOAuthEndpoints;
  let secrets: MemorySecrets;
  let clock: TestClock;
  let logs: string[];
  let key: Buffer;
  let app: ReturnType<typeof createOnboardingApp>;
  const config = tenantConfigSchema.parse({
    tenant: "acme",
    mailboxes: [
      {
        id: "info@acme.it",
        pop3: { host: "pop.acme.it", user: "info@acme.it", passwordSecret: "acme/pop3" },
        gmail: { user: ACCOUNT, credentialsSecret: "acme/info/google" },
      },
    ],
  });
  const mailbox = config.mailboxes[0] as MailboxConfig;

  beforeAll(async () => {
    gmail = new GmailApiStandIn();
    const started = await gmail.start();
    google = new GoogleOAuthStandIn({ gmail, account: ACCOUNT, client: CLIENT });
    endpoints = { ...(await google.start(started.tokenUrl)), apiBaseUrl: started.baseUrl };
  });

  afterAll(async () => {
    await google?.stop();
    await gmail?.stop();
  });

  beforeEach(() => {
    secrets = new MemorySecrets();
    key = randomBytes(32);
    secrets.values.set("acme/onboarding", JSON.stringify({ linkKey: key.toString("base64"), ...CLIENT }));
    clock = new TestClock();
    logs = [];
    app = createOnboardingApp({
      tenant: "acme",
      mailboxes: config.mailboxes,
      google: endpoints,
      publicUrl: PUBLIC_URL,
      secrets,
      onboardingSecret: "acme/onboarding",
      status: async () => ({
        lastPoll: "never",
        deliveredToday: 0,
        delayP95Ms: undefined,
        quarantined: [],
      }),
      checkGoogle: (m) => checkGoogleConnection({ endpoints, secrets, clock }, m),
      clock,
      clientKey: (c) => c.req.header("x-test-client") ?? "one",
      log: (event) => logs.push(JSON.stringify(event)),
    });
  });

  const link = (overrides: { expiresAt?: number; tenant?: string; mailboxId?: string } = {}, signKey = key) =>
    signInvite(signKey, {
      tenant: overrides.tenant ?? "acme",
      mailboxId: overrides.mailboxId ?? mailbox.id,
      expiresAt: overrides.expiresAt ?? clock.now() + 7 * 86_400_000,
    }).token;

  const get = (path: string, jar?: CookieJar, headers: Record<string, string> = {}) =>
    app.request(path, { headers: { ...headers, ...(jar ? { cookie: jar.header() } : {}) } });

  const post = (path: string, form: Record<string, string>, jar?: CookieJar) =>
    app.request(path, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(jar ? { cookie: jar.header() } : {}),
      },
      body: new URLSearchParams(form).toString(),
    });

  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";

  /** Opens the link, presses Connect, allows at the stand-in; returns the callback path. */
  async function consent(token: string, jar: CookieJar): Promise<string> {
    const opened = await get(`/o/${token}`, jar);
    jar.take(opened);
    const connect = await post(`/o/${token}/connect`, { csrf: csrfOf(await opened.text()) }, jar);
    jar.take(connect);
    expect(connect.status).toBe(303);
    const consentUrl = new URL(connect.headers.get("location") ?? "");
    expect((await fetch(consentUrl)).status).toBe(200);
    const approve = await fetch(new URL("/approve", consentUrl), {
      method: "POST",
      body: new URLSearchParams({ ...Object.fromEntries(consentUrl.searchParams), decision: "allow" }),
      redirect: "manual",
    });
    const callback = new URL(approve.headers.get("location") ?? "");
    expect(callback.origin).toBe(PUBLIC_URL);
    return `${callback.pathname}${callback.search}`;
  }

  it("shows the page: which POP3 address goes into which Gmail account, what happens, Connect; with the security headers", async () => {
    // Act
    const response = await get(`/o/${link()}`);
    const html = await response.text();
    // Assess
    expect(response.status).toBe(200);
    expect(html).toContain("info@acme.it");
    expect(html).toContain(ACCOUNT);
    expect(html).toContain("Connect Gmail");
    expect(html).toMatch(/archive/);
    expect(csrfOf(html)).not.toBe("");
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("answers in Italian when the browser prefers it, in English otherwise", async () => {
    // Act
    const italian = await (
      await get(`/o/${link()}`, undefined, { "accept-language": "it-IT,it;q=0.9,en;q=0.8" })
    ).text();
    // Assess
    expect(italian).toContain("Collega Gmail");
    expect(italian).toContain('lang="it"');
    expect(pickLanguage("en-US,en;q=0.9,it;q=0.8")).toBe("en");
    expect(pickLanguage("de-DE,it;q=0.5")).toBe("it");
    expect(pickLanguage(undefined)).toBe("en");
  });

  it("asks Google for a code with PKCE S256, offline access, consent, only insert and labels, and a state that is not the link", async () => {
    // Prepare
    const jar = new CookieJar();
    const token = link();
    // Act
    await consent(token, jar);
    // Assess
    const params = google.consents().at(-1)?.params ?? {};
    expect(params).toMatchObject({
      response_type: "code",
      code_challenge_method: "S256",
      access_type: "offline",
      prompt: "consent",
      redirect_uri: `${PUBLIC_URL}/oauth/callback`,
      client_id: CLIENT.clientId,
    });
    expect(params.scope?.split(" ").sort()).toEqual([
      "https://www.googleapis.com/auth/gmail.insert",
      "https://www.googleapis.com/auth/gmail.labels",
    ]);
    expect(params.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.state).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(JSON.stringify(params)).not.toContain(token);
  });

  it("connects: the callback stores the refresh token in the mailbox's Google secret, checks it and says so, showing no token", async () => {
    // Prepare
    const jar = new CookieJar();
    const callback = await consent(link(), jar);
    // Act
    const response = await get(callback, jar);
    const html = await response.text();
    // Assess
    expect(response.status).toBe(200);
    const stored = JSON.parse(secrets.values.get("acme/info/google") ?? "{}");
    expect(stored).toMatchObject({ ...CLIENT, refreshToken: expect.stringMatching(/^1\/\//) });
    expect(stored.onboarding.account).toBe(ACCOUNT);
    expect(html).toContain('data-check="ok"');
    expect(html).toContain(ACCOUNT);
    const code = new URL(callback, PUBLIC_URL).searchParams.get("code") ?? "";
    for (const text of [html, logs.join("\n")]) {
      expect(text).not.toContain(stored.refreshToken);
      expect(text).not.toContain(code);
      expect(text).not.toContain(CLIENT.clientSecret);
      expect(text).not.toContain(key.toString("base64"));
    }
  });

  it("refuses an expired link with its page and changes nothing", async () => {
    // Prepare
    const token = link({ expiresAt: clock.now() + 60_000 });
    clock.advance(60_000);
    const before = [...secrets.values];
    // Act
    const page = await get(`/o/${token}`);
    const connect = await post(`/o/${token}/connect`, { csrf: "x" });
    // Assess
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('data-problem="expired"');
    expect(connect.status).toBe(410);
    expect(connect.headers.get("location")).toBeNull();
    expect([...secrets.values]).toEqual(before);
  });

  it("refuses a tampered link: a changed sealed part, another mailbox's sealed part, or a changed signature", async () => {
    // Prepare
    const [tenant = "", sealed = "", mac = ""] = link().split(".");
    const [, otherSealed = ""] = link({ mailboxId: "boss@acme.it" }).split(".");
    const flip = (text: string, at: number) =>
      `${text.slice(0, at)}${text[at] === "A" ? "B" : "A"}${text.slice(at + 1)}`;
    // Act
    const responses = await Promise.all([
      get(`/o/${tenant}.${flip(sealed, 20)}.${mac}`),
      get(`/o/${tenant}.${otherSealed}.${mac}`),
      get(`/o/${tenant}.${sealed}.${flip(mac, 5)}`),
    ]);
    // Assess
    for (const response of responses) {
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('data-problem="tampered"');
    }
    expect(verifyInvite(key, "acme", "garbage", clock.now())).toEqual({ ok: false, problem: "malformed" });
  });

  it("keeps the mailbox address out of the link", () => {
    // Act
    const token = link();
    // Assess
    expect(token.startsWith("acme.")).toBe(true);
    expect(token).not.toContain(Buffer.from(mailbox.id).toString("base64url").slice(0, 8));
    expect(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("latin1")).not.toContain(mailbox.id);
  });

  it("refuses a link another tenant signed", async () => {
    // Prepare
    const foreign = link({ tenant: "globex" }, randomBytes(32));
    // Act
    const response = await get(`/o/${foreign}`);
    // Assess
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('data-problem="foreign-tenant"');
  });

  it("refuses a replayed callback and a second Connect with the used link; the stored grant stays", async () => {
    // Prepare
    const jar = new CookieJar();
    const token = link();
    const callback = await consent(token, jar);
    const savedCookies = jar.header();
    jar.take(await get(callback, jar));
    const stored = secrets.values.get("acme/info/google");
    // Act
    const replayWithCookie = await app.request(callback, { headers: { cookie: savedCookies } });
    const replayWithout = await get(callback);
    const opened = await get(`/o/${token}`, jar);
    const again = await post(`/o/${token}/connect`, { csrf: csrfOf(await opened.clone().text()) }, jar);
    // Assess
    expect(replayWithCookie.status).toBe(409);
    expect(await replayWithCookie.text()).toContain('data-problem="used"');
    expect(replayWithout.status).toBe(400);
    expect(await replayWithout.text()).toContain('data-problem="sign-in-expired"');
    expect(await opened.text()).toContain('data-state="connected"');
    expect(again.status).toBe(409);
    expect(secrets.values.get("acme/info/google")).toBe(stored);
    expect(google.exchanges().filter((e) => e.ok).length).toBeGreaterThan(0);
  });

  it("refuses a POST without the CSRF token, or with one from another browser", async () => {
    // Prepare
    const token = link();
    const jar = new CookieJar();
    jar.take(await get(`/o/${token}`, jar));
    const otherJar = new CookieJar();
    const otherPage = await get(`/o/${token}`, otherJar);
    const foreignCsrf = csrfOf(await otherPage.text());
    const consentsBefore = google.consents().length;
    // Act
    const none = await post(`/o/${token}/connect`, {}, jar);
    const foreign = await post(`/o/${token}/connect`, { csrf: foreignCsrf }, jar);
    const disconnect = await post(`/o/${token}/disconnect`, {}, jar);
    // Assess
    for (const response of [none, foreign, disconnect]) {
      expect(response.status).toBe(403);
      expect(await response.text()).toContain('data-problem="csrf"');
      expect(response.headers.get("location")).toBeNull();
    }
    expect(google.consents().length).toBe(consentsBefore);
    expect(secrets.values.has("acme/info/google")).toBe(false);
  });

  it("rate-limits the callback per client", async () => {
    // Act
    const answers: number[] = [];
    for (let i = 0; i < 12; i++) answers.push((await get("/oauth/callback?code=x&state=y")).status);
    const otherClient = await get("/oauth/callback?code=x&state=y", undefined, { "x-test-client": "two" });
    // Assess
    expect(answers.slice(0, 10).every((s) => s === 400)).toBe(true);
    expect(answers.slice(10)).toEqual([429, 429]);
    expect(otherClient.status).toBe(400);
  });

  it("a refusal at Google's consent connects nothing", async () => {
    // Prepare
    const jar = new CookieJar();
    const token = link();
    const opened = await get(`/o/${token}`, jar);
    jar.take(opened);
    const connect = await post(`/o/${token}/connect`, { csrf: csrfOf(await opened.text()) }, jar);
    jar.take(connect);
    const consentUrl = new URL(connect.headers.get("location") ?? "");
    const denied = await fetch(new URL("/approve", consentUrl), {
      method: "POST",
      body: new URLSearchParams({ ...Object.fromEntries(consentUrl.searchParams), decision: "deny" }),
      redirect: "manual",
    });
    const callback = new URL(denied.headers.get("location") ?? "");
    // Act
    const response = await get(`${callback.pathname}${callback.search}`, jar);
    // Assess
    expect(await response.text()).toContain('data-problem="denied"');
    expect(secrets.values.has("acme/info/google")).toBe(false);
  });

  it("Disconnect revokes the grant at Google, removes it from the secret, and the link then says so", async () => {
    // Prepare
    const jar = new CookieJar();
    const token = link();
    const connected = await get(await consent(token, jar), jar);
    jar.take(connected);
    const refreshToken = JSON.parse(secrets.values.get("acme/info/google") ?? "{}").refreshToken;
    // Act
    const response = await post(`/o/${token}/disconnect`, { csrf: csrfOf(await connected.text()) }, jar);
    const after = await get(`/o/${token}`, jar);
    // Assess
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('data-state="disconnected"');
    expect(google.revoked()).toContain(refreshToken);
    const stored = JSON.parse(secrets.values.get("acme/info/google") ?? "{}");
    expect(stored.refreshToken).toBeUndefined();
    expect(stored.clientSecret).toBeUndefined();
    expect(await after.text()).toContain('data-state="disconnected"');
    expect(await (await post(`/o/${token}/connect`, { csrf: "x" }, jar)).text()).toContain("data-problem");
  });
});
