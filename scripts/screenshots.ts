// `npm run screenshots`: regenerates docs/onboarding/*.png, the onboarding pages as a customer
// sees them (connect, connected with status, a refused link) at 390 px (a phone) and 1280 px,
// plus the connect page in Italian at 390 px,
// from the real handler in Chromium against the stand-ins of the browser test.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { signInvite } from "../shared/core/invite-link";
import { launchChromium, MAILBOX, startOnboardingWorld } from "../test/browser/onboarding-world";
import { smallTestMessage } from "../test/fakes/gmail-test-mail";

const OUT = fileURLToPath(new URL("../docs/onboarding/", import.meta.url));
const WIDTHS = [390, 1280] as const;

const world = await startOnboardingWorld({ maxMessageBytes: 4096 });
const profile = await mkdtemp(join(tmpdir(), "pop2gmail-screenshots-"));
const browser = await launchChromium(profile);
try {
  const link = await world.invite();
  const shoot = async (
    name: string,
    url: string,
    act?: (page: import("playwright-core").Page) => Promise<void>,
  ) => {
    for (const width of WIDTHS) {
      const page = await browser.newPage();
      await page.setViewportSize({ width, height: width < 600 ? 844 : 800 });
      await page.goto(url);
      await act?.(page);
      await page.screenshot({ path: join(OUT, `${name}-${width}.png`), fullPage: true });
      await page.close();
    }
  };
  await shoot("connect", link);
  // The same page as an Italian browser sees it (Accept-Language), on a phone.
  const italian = await browser.newPage();
  await italian.setViewportSize({ width: 390, height: 844 });
  await italian.setExtraHTTPHeaders({ "accept-language": "it-IT,it;q=0.9" });
  await italian.goto(link);
  await italian.screenshot({ path: join(OUT, "connect-it-390.png"), fullPage: true });
  await italian.close();
  // Connect once, deliver a few messages (one too large: held back), then show the status view.
  const page = await browser.newPage();
  await page.goto(link);
  await page.getByRole("button", { name: "Connect Gmail" }).click();
  await page.locator("#allow").click();
  await page.waitForURL((url) => url.pathname === "/oauth/callback");
  await page.close();
  for (let i = 1; i <= 3; i++)
    await world.dovecot.deliver("info", smallTestMessage(`screenshot-${i}@acme.example`));
  await world.dovecot.deliver("info", smallTestMessage("too-large@acme.example", "x".repeat(8000)));
  const run = await world.runOnce();
  if (!run.stdout.includes('"copied": 3'))
    throw new Error(`the run did not copy 3 messages:\n${run.stdout}${run.stderr}`);
  await shoot("connected", link);
  const key = Buffer.from(String((await world.credentials())["acme/onboarding"]?.linkKey), "base64");
  const expired = signInvite(key, { tenant: "acme", mailboxId: MAILBOX, expiresAt: Date.now() - 1000 }).token;
  await shoot("expired", `${new URL(link).origin}/o/${expired}`);
  process.stdout.write(`wrote ${WIDTHS.length * 3 + 1} screenshots to ${OUT}\n`);
} finally {
  await browser.close();
  await world.close();
  await rm(profile, { recursive: true, force: true });
}
