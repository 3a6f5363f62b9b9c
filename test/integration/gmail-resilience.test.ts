import { afterEach, describe, expect, it } from "vitest";
import { GmailMailSink } from "../../shared/adapters/gmail/gmail-mail-sink";
import { GMAIL_SCOPES, GmailApiStandIn, type StandInRequest } from "../fakes/gmail-api-stand-in";
import {
  gmailMailbox,
  importRequestOf,
  MapSecretStore,
  pipelineImportRequestOf,
} from "../fakes/gmail-sink-fixture";
import { smallTestMessage } from "../fakes/gmail-test-mail";
import { VirtualClock } from "../fakes/gmail-virtual-clock";
import { seededRandom } from "../fakes/seeded-random";

const USER = "info@acme.it";
const isImport = (r: StandInRequest) => r.operation === "import";

describe("GmailMailSink under faults and quota", () => {
  let standIn: GmailApiStandIn | undefined;
  afterEach(async () => {
    await standIn?.stop();
  });

  async function setUp(options: { quotaUnitsPerMinute?: number; maxConcurrentPerUser?: number }) {
    const clock = new VirtualClock();
    standIn = new GmailApiStandIn({ now: () => clock.now(), seed: 42, ...options });
    const urls = await standIn.start();
    standIn.registerOAuthUser({
      user: USER,
      clientId: "client-1",
      clientSecret: "secret-1",
      refreshToken: "refresh-1",
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
    });
    const secrets = new MapSecretStore();
    secrets.set(
      "google-info",
      JSON.stringify({ clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-1" }),
    );
    return { clock, standIn, urls, secrets };
  }

  it("delivers 500 messages exactly once with 429/500/503 injected on 30% of imports", async () => {
    // Prepare
    const { clock, standIn, urls, secrets } = await setUp({ maxConcurrentPerUser: 4 });
    // 30% of imports fail: a third of them 429 before storing, a third 500 before storing, a
    // third 503 after storing (the answer is lost: the dangerous case for duplicates).
    standIn.injectFault({
      match: isImport,
      probability: 0.1,
      action: { kind: "status", status: 429, reason: "rateLimitExceeded" },
    });
    standIn.injectFault({ match: isImport, probability: 0.1 / 0.9, action: { kind: "status", status: 500 } });
    standIn.injectFault({
      match: isImport,
      probability: 0.1 / 0.8,
      action: { kind: "status", status: 503, afterStore: true },
    });
    const sink = new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 15_000,
        maxConcurrentImports: 4,
      },
      clock,
      random: seededRandom(7),
      maxAttempts: 10,
    });
    const mailbox = gmailMailbox("info", USER);
    const ids = Array.from({ length: 500 }, (_, n) => `msg-${n}@acme.it`);

    // Act
    const results = await Promise.all(
      ids.map((id, n) =>
        sink.import(pipelineImportRequestOf(mailbox, `uidl-${n}`, smallTestMessage(id), `<${id}>`)),
      ),
    );

    // Assess
    const imports = standIn.requestLog().filter((e) => isImport(e.request));
    const failed = imports.filter((e) => e.status !== 200).length;
    expect(failed / imports.length).toBeGreaterThan(0.2);
    expect(standIn.countStatus(503, "import")).toBeGreaterThan(10);
    expect(standIn.messages(USER)).toHaveLength(500);
    for (const id of ids) expect(standIn.rawImportCount(id)).toBe(1);
    expect(new Set(results.map((r) => r.gmailId)).size).toBe(500);
  });

  it("drains a backlog at the stand-in's quota (within 10%) with at most a handful of 429s", async () => {
    // Prepare
    const quota = 6_000;
    const { clock, standIn, urls, secrets } = await setUp({
      quotaUnitsPerMinute: quota,
      maxConcurrentPerUser: 4,
    });
    const sink = new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: quota,
        maxConcurrentImports: 4,
      },
      clock,
      random: seededRandom(11),
    });
    const mailbox = gmailMailbox("info", USER);
    const count = 500;
    const started = clock.now();

    // Act
    await Promise.all(
      Array.from({ length: count }, (_, n) =>
        sink.import(importRequestOf(mailbox, `uidl-${n}`, smallTestMessage(`rate-${n}@acme.it`))),
      ),
    );

    // Assess
    const stored = standIn.messages(USER);
    expect(stored).toHaveLength(count);
    const elapsedMinutes = (Math.max(...stored.map((m) => m.importedAt)) - started) / 60_000;
    const unitsPerMinute = (count * 25) / elapsedMinutes;
    expect(unitsPerMinute).toBeGreaterThan(quota * 0.9);
    expect(unitsPerMinute).toBeLessThan(quota * 1.1);
    expect(standIn.countStatus(429)).toBeLessThanOrEqual(5);
  });
});
