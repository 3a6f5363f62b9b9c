import { afterEach, describe, expect, it, vi } from "vitest";
import { createLambdaDeps } from "../../shared/adapters/lambda/lambda-deps";
import {
  METRIC,
  METRIC_DIMENSIONS,
  METRIC_EMISSION,
  METRIC_NAMESPACE,
  METRIC_UNIT,
  type MetricName,
  PIPELINE_LOG_MESSAGE,
} from "../../shared/config/metrics";
import type { PipelineEvent } from "../../shared/ports/telemetry";
import { type Emf, tenantEnv } from "./handler-harness";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  vi.resetModules();
});

const key = { tenant: "acme", mailboxId: "info@acme.it", uidl: "0000002a5f1c" };

/** One event of every type that has a metric, plus the log-only ones. */
const EVENTS: PipelineEvent[] = [
  { type: "listed", ...key, bytes: 900, listedAt: 1 },
  {
    type: "archived",
    ...key,
    archiveKey: "acme/info%40acme.it/0000002a5f1c.eml",
    bytes: 900,
    sha256: "ab".repeat(32),
  },
  {
    type: "imported",
    ...key,
    archiveKey: "acme/info%40acme.it/0000002a5f1c.eml",
    gmailId: "18f0000000000000",
    bytes: 900,
    pipelineDelayMs: 12_000,
    deliveryDelayMs: 40_000,
    reusedEarlierImport: false,
  },
  {
    type: "deleted",
    ...key,
    archiveKey: "acme/info%40acme.it/0000002a5f1c.eml",
    gmailId: "18f0000000000000",
  },
  { type: "quarantined", ...key, code: "MESSAGE_REJECTED", reason: "Invalid From header" },
  { type: "retry-scheduled", ...key, code: "RATE_LIMITED", attempt: 1, retryAfterMs: 2_000 },
  { type: "busy", tenant: "acme", mailboxId: key.mailboxId, reason: "IN-USE" },
  {
    type: "credentials-broken",
    tenant: "acme",
    mailboxId: key.mailboxId,
    service: "google",
    code: "CREDENTIALS_REJECTED",
  },
  {
    type: "poll-completed",
    tenant: "acme",
    mailboxId: key.mailboxId,
    onServer: 3,
    newMessages: 1,
    requeued: 0,
    vanished: 0,
    deletesDue: 0,
    idle: false,
  },
  { type: "requeued", ...key, state: "listed" },
  { type: "vanished", ...key, state: "listed" },
  { type: "retained", ...key, gmailId: "18f0000000000000", deleteDueAt: 86_400_000 },
  { type: "delete-uncommitted", tenant: "acme", mailboxId: key.mailboxId, messages: 2 },
];

/** Every metric in the EMF documents, by name, with its dimension sets, unit, value and document. */
function emitted(documents: Record<string, unknown>[]) {
  const seen = new Map<string, { dimensions: string[][]; unit: string; value: unknown; doc: Emf }>();
  for (const doc of documents.filter((d) => d._aws !== undefined) as Emf[]) {
    for (const block of doc._aws.CloudWatchMetrics) {
      expect(block.Namespace).toBe(METRIC_NAMESPACE);
      for (const metric of block.Metrics) {
        seen.set(metric.Name, {
          dimensions: block.Dimensions,
          unit: metric.Unit,
          value: doc[metric.Name],
          doc,
        });
      }
    }
  }
  return seen;
}

/** The telemetry exactly as a Lambda container builds it, printing through spied console methods. */
function productionTelemetry() {
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  vi.stubEnv("POWERTOOLS_SERVICE_NAME", "pop2gmail");
  vi.stubEnv("POWERTOOLS_METRICS_NAMESPACE", METRIC_NAMESPACE);
  const lines: string[] = [];
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
  const deps = createLambdaDeps({ ...tenantEnv(), POWERTOOLS_SERVICE_NAME: "pop2gmail" });
  const documents = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { telemetry: deps.telemetry, lines, documents };
}

describe("Powertools telemetry", () => {
  it("emits every metric of shared/config/metrics.ts with its unit and exactly its dimension set", () => {
    // Prepare
    const { telemetry, documents } = productionTelemetry();

    // Act
    for (const event of EVENTS) telemetry.record(event);
    telemetry.tenantProblems(2);
    telemetry.flush();

    // Assess
    const seen = emitted(documents());
    expect([...seen.keys()].sort()).toEqual(Object.values(METRIC).sort());
    for (const [name, { dimensions, unit, doc }] of seen) {
      expect(dimensions, name).toEqual([[...METRIC_DIMENSIONS[name as MetricName]]]);
      expect(unit, name).toBe(METRIC_UNIT[name as MetricName]);
      for (const dimension of METRIC_DIMENSIONS[name as MetricName])
        expect(doc[dimension], name).toBeDefined();
    }
    expect(seen.get("PipelineDelay")?.value).toBe(12_000);
    expect(seen.get("TenantProblems")?.value).toBe(2);
    expect(seen.get("CredentialsBroken")?.doc).toMatchObject({ RemoteService: "google", Tenant: "acme" });
  });

  it("emits only TenantProblems, as 0, for a healthy idle tenant: the one metric billed every hour", () => {
    // Prepare
    const { telemetry, documents } = productionTelemetry();
    const idlePoll = EVENTS.find((e) => e.type === "poll-completed")!;

    // Act: a minute of an idle tenant, an idle poll of each mailbox and the keeper's count.
    telemetry.record({ ...idlePoll, newMessages: 0, idle: true });
    telemetry.record({ ...idlePoll, mailboxId: "sales@acme.it", newMessages: 0, idle: true });
    telemetry.tenantProblems(0);
    telemetry.flush();

    // Assess
    const seen = emitted(documents());
    expect([...seen.keys()]).toEqual([METRIC.tenantProblems]);
    expect(seen.get(METRIC.tenantProblems)?.value).toBe(0);
    for (const name of Object.values(METRIC)) {
      expect(METRIC_EMISSION[name], name).toBe(name === METRIC.tenantProblems ? "every-minute" : "on-event");
    }
  });

  it("emits only PipelineDelay for mail that flows without trouble; counts and sizes stay in the log lines", () => {
    // Prepare
    const { telemetry, documents } = productionTelemetry();
    const flowing = EVENTS.filter((e) =>
      ["listed", "archived", "imported", "retained", "deleted"].includes(e.type),
    );

    // Act
    for (const event of flowing) telemetry.record(event);
    telemetry.flush();

    // Assess
    const seen = emitted(documents());
    expect([...seen.keys()]).toEqual([METRIC.pipelineDelay]);
    const imported = documents().find((d) => d.message === PIPELINE_LOG_MESSAGE.imported);
    expect(imported).toMatchObject({ bytes: 900, pipelineDelayMs: 12_000, deliveryDelayMs: 40_000 });
    for (const message of Object.values(PIPELINE_LOG_MESSAGE).filter(
      (m) => m !== PIPELINE_LOG_MESSAGE.quarantined,
    )) {
      expect(
        documents().some((d) => d.message === message),
        message,
      ).toBe(true);
    }
  });

  it("logs JSON lines naming tenant, mailbox, UIDL, S3 key and Gmail id, and nothing secret", () => {
    // Prepare
    const { telemetry, documents } = productionTelemetry();

    // Act
    for (const event of EVENTS) telemetry.record(event);

    // Assess
    const logs = documents().filter((d) => d._aws === undefined);
    const imported = logs.find((l) => l.message === "message imported into Gmail");
    expect(logs).toHaveLength(EVENTS.length);
    expect(imported).toMatchObject({
      level: "INFO",
      service: "pop2gmail",
      tenant: "acme",
      mailboxId: "info@acme.it",
      uidl: key.uidl,
      s3Key: "acme/info%40acme.it/0000002a5f1c.eml",
      gmailId: "18f0000000000000",
    });
    expect(logs.find((l) => l.message?.toString().startsWith("message quarantined"))).toMatchObject({
      level: "ERROR",
      code: "MESSAGE_REJECTED",
    });
    for (const line of logs) expect(line.tenant).toBe("acme");
    expect(JSON.stringify(logs)).not.toMatch(/password|refresh|secret/i);
  });
});

describe("function modules", () => {
  it("build their dependencies at module load from the environment and export handler", async () => {
    // Prepare
    for (const [name, value] of Object.entries(tenantEnv())) vi.stubEnv(name, value);

    // Act
    const modules = await Promise.all([
      import("../../functions/list-new-messages/handler"),
      import("../../functions/copy-message/handler"),
      import("../../functions/delete-copied/handler"),
    ]);

    // Assess
    for (const module of modules) expect(module.handler).toBeTypeOf("function");
  });

  it("fail at load, naming the variable, when the stack did not set one", async () => {
    // Prepare
    for (const [name, value] of Object.entries(tenantEnv())) vi.stubEnv(name, value);
    vi.stubEnv("LEDGER_TABLE_NAME", "");

    // Act
    const loading = import("../../functions/copy-message/handler");

    // Assess
    await expect(loading).rejects.toThrow(/LEDGER_TABLE_NAME/);
  });
});
