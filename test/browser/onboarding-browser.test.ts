import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signInvite } from "../../shared/core/invite-link";
import { smallTestMessage } from "../fakes/gmail-test-mail";
import {
  ACCOUNT,
  launchChromium,
  MAILBOX,
  type OnboardingWorld,
  startOnboardingWorld,
} from "./onboarding-world";

/**
 * Issue 15's "must show", in a real browser (Debian's Chromium through playwright-core): invite ->
 * open the link -> Connect -> consent at the Google stand-in -> callback -> token stored -> a
 * message flows from Dovecot into the Gmail stand-in through the local runtime -> the status view
 * shows it delivered -> Disconnect -> imports stop. Then each hostile case of item 5.
 */
describe("onboarding by link in Chromium", () => {
  let world: OnboardingWorld;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  let link: string;

  beforeAll(async () => {
    world = await startOnboardingWorld();
    profile = await mkdtemp(join(tmpdir(), "pop2gmail-chromium-"));
    browser = await launchChromium(profile);
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await world?.close();
    await rm(profile, { recursive: true, force: true });
  });

  /** The element's text once it is there (after a navigation a click started). */
  const textOf = async (locator: Locator) => {
    await locator.first().waitFor();
    return ((await locator.first().textContent()) ?? "").trim();
  };

  const linkKey = async () =>
    Buffer.from(String((await world.credentials())["acme/onboarding"]?.linkKey), "base64");

  it("invite -> Connect -> consent -> token stored -> a message flows -> status shows it -> Disconnect stops imports", async () => {
    // Prepare
    link = await world.invite(["--expires", "7d"]);
    // Act: open the link and connect
    const opened = await page.goto(link);
    expect(await textOf(page.locator("h1"))).toBe("Connect your Gmail account");
    const pageText = await page.locator("main").textContent();
    await page.getByRole("button", { name: "Connect Gmail" }).click();
    await page.waitForURL((url) => url.pathname === "/o/oauth2/v2/auth");
    await page.locator("#allow").click();
    await page.waitForURL((url) => url.pathname === "/oauth/callback");
    // Assess: connected, checked, stored
    expect(opened?.status()).toBe(200);
    expect(pageText).toContain(MAILBOX);
    expect(pageText).toContain(ACCOUNT);
    expect(await textOf(page.locator('[data-check="ok"]'))).toContain(ACCOUNT);
    const stored = (await world.credentials())["acme/info/google"];
    expect(stored).toMatchObject({ refreshToken: expect.stringMatching(/^1\/\//) });
    expect(await page.content()).not.toContain(String(stored?.refreshToken));

    // Act: a message arrives at the POP3 box and the local runtime runs
    const message = smallTestMessage("first-after-connect@acme.example");
    await world.dovecot.deliver("info", message);
    const run = await world.runOnce();
    // Assess: in Gmail once, gone from POP3, and the status view says so
    expect(run.code, run.stderr).toBe(0);
    expect(
      world.gmail.messages(ACCOUNT).filter((m) => m.raw.includes(Buffer.from("first-after-connect"))).length,
    ).toBe(1);
    expect(await world.dovecot.storedMessageCount("info")).toBe(0);
    await page.goto(link);
    expect(await textOf(page.locator('[data-state="connected"]'))).toContain(ACCOUNT);
    expect(await textOf(page.locator('[data-status="delivered-today"] dd'))).toBe("1");
    expect(await textOf(page.locator('[data-status="last-poll"] dd'))).not.toBe("not yet");

    // Act: disconnect, then another message arrives and the runtime runs again
    const refreshToken = String(stored?.refreshToken);
    await page.getByRole("button", { name: "Disconnect" }).click();
    await page.locator('[data-state="disconnected"]').waitFor();
    const importsBefore = world.gmail.rawImports().length;
    await world.dovecot.deliver("info", smallTestMessage("after-disconnect@acme.example"));
    const stopped = await world.runOnce();
    // Assess: revoked at Google, no import, the mail stays on POP3
    expect(stopped.code).toBe(2);
    expect(stopped.stdout).toContain("disconnected by the mailbox's owner");
    expect(world.google.revoked()).toContain(refreshToken);
    expect((await world.credentials())["acme/info/google"]?.refreshToken).toBeUndefined();
    expect(world.gmail.rawImports().length).toBe(importsBefore);
    expect(await world.dovecot.storedMessageCount("info")).toBe(1);
  });

  it("serves every page with CSP, no framing and no referrer", async () => {
    // Act
    const response = await page.goto(link);
    const headers = response?.headers() ?? {};
    // Assess
    expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(headers["x-frame-options"]).toBe("DENY");
    expect(headers["referrer-policy"]).toBe("no-referrer");
  });

  it("shows a clear page for an expired, a tampered, a foreign-tenant and a used link, and changes nothing", async () => {
    // Prepare
    const key = await linkKey();
    const expired = signInvite(key, {
      tenant: "acme",
      mailboxId: MAILBOX,
      expiresAt: Date.now() - 1000,
    }).token;
    const fresh = signInvite(key, {
      tenant: "acme",
      mailboxId: MAILBOX,
      expiresAt: Date.now() + 3_600_000,
    }).token;
    const [tenant = "", sealed = "", mac = ""] = fresh.split(".");
    const tampered = `${tenant}.${sealed}.${mac.startsWith("A") ? "B" : "A"}${mac.slice(1)}`;
    const foreign = signInvite(Buffer.alloc(32, 7), {
      tenant: "globex",
      mailboxId: MAILBOX,
      expiresAt: Date.now() + 3_600_000,
    }).token;
    const credentialsBefore = await readFile(join(world.dir, "data", "credentials.json"), "utf8");
    const base = new URL(link).origin;
    // Act + Assess
    for (const [token, problem, text] of [
      [expired, "expired", "expired"],
      [tampered, "tampered", "altered"],
      [foreign, "foreign-tenant", "another service"],
    ] as const) {
      const response = await page.goto(`${base}/o/${token}`);
      expect(response?.status(), problem).toBeGreaterThanOrEqual(400);
      expect(await textOf(page.locator(`[data-problem="${problem}"]`))).toContain(text);
      expect(await page.getByRole("button").count()).toBe(0);
    }
    // The first link connected once and was disconnected: it opens no Connect again.
    await page.goto(link);
    await page.locator('[data-state="disconnected"]').waitFor();
    expect(await page.getByRole("button", { name: "Connect Gmail" }).count()).toBe(0);
    expect(await readFile(join(world.dir, "data", "credentials.json"), "utf8")).toBe(credentialsBefore);
  });

  it("refuses a replayed callback and a POST without the CSRF token", async () => {
    // Prepare: a new link, connected in the browser; the callback URL kept
    const second = await world.invite();
    await page.goto(second);
    await page.getByRole("button", { name: "Connect Gmail" }).click();
    await page.locator("#allow").click();
    await page.waitForURL((url) => url.pathname === "/oauth/callback");
    await page.locator('[data-check="ok"]').waitFor();
    const callbackUrl = page.url();
    const stored = JSON.stringify((await world.credentials())["acme/info/google"]);
    // Act
    const replay = await page.goto(callbackUrl);
    const replayText = await page.locator("main").textContent();
    const forged = await browser.request.post(`${second}/disconnect`, { form: { csrf: "forged" } });
    const bare = await browser.request.post(`${second}/connect`, { form: {} });
    // Assess
    expect(replay?.status()).toBe(400);
    expect(replayText).toContain("already finished");
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('data-problem="csrf"');
    expect(bare.status()).toBe(403);
    expect(JSON.stringify((await world.credentials())["acme/info/google"])).toBe(stored);
  });
});
