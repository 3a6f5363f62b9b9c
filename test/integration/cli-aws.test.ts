import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import type { LedgerState } from "../../shared/core/model";
import {
  type DynaliteStandIn,
  type FauxqsStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  startFauxqsStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";
import { findFreePort } from "../fakes/free-port";
import { runCli } from "./support/cli-process";

/**
 * A CloudFormation stand-in on 127.0.0.1 that answers DescribeStacks (query protocol, XML) for
 * the stacks in `stacks` with their outputs, and with AWS's ValidationError for any other name.
 */
async function startCloudFormationStandIn(
  stacks: Record<string, Record<string, string>>,
): Promise<{ endpoint: string; server: Server }> {
  const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      const form = new URLSearchParams(body);
      const name = form.get("StackName") ?? "";
      const outputs = stacks[name];
      if (form.get("Action") !== "DescribeStacks" || outputs === undefined) {
        res
          .writeHead(400, { "content-type": "text/xml" })
          .end(
            `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${xml(name)} does not exist</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
          );
        return;
      }
      const members = Object.entries(outputs)
        .map(
          ([k, v]) => `<member><OutputKey>${xml(k)}</OutputKey><OutputValue>${xml(v)}</OutputValue></member>`,
        )
        .join("");
      res
        .writeHead(200, { "content-type": "text/xml" })
        .end(
          `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${xml(name)}</StackName><StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/${xml(name)}/1</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></DescribeStacksResponse>`,
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/**
 * The `--aws` verbs as child processes against dynalite and fauxqs on 127.0.0.1: the resources
 * are passed explicitly (--table, --queue-url, --dlq-url) and the SDK finds the stand-ins through
 * its own AWS_ENDPOINT_URL_<SERVICE> variables, with dummy credentials.
 */
const TENANT = "acme";
const INFO = "info@acme.example";
const SALES = "sales@acme.example";

describe("pop2gmail --aws verbs", () => {
  let dir: string;
  let dynalite: DynaliteStandIn;
  let fauxqs: FauxqsStandIn;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-cli-aws-"));
    await writeFile(join(dir, `${TENANT}.json`), JSON.stringify(tenantConfig()));
    dynalite = await startDynaliteStandIn();
    fauxqs = await startFauxqsStandIn();
  });

  afterAll(async () => {
    await fauxqs?.stop();
    await dynalite?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function tenantConfig() {
    const mailbox = (id: string) => ({
      id,
      pop3: { host: "pop.acme.example", user: id, passwordSecret: `pop2gmail/acme/${id}-pop3` },
      gmail: { user: "owner@acme.example", credentialsSecret: "pop2gmail/acme/google" },
    });
    return {
      tenant: TENANT,
      archive: { infrequentAccessAfterDays: 30 },
      mailboxes: [mailbox(INFO), mailbox(SALES)],
    };
  }

  /** A clean environment: dummy credentials, stand-in endpoints, no profile files, no IMDS. */
  function awsEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      AWS_REGION: STAND_IN_REGION,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
      AWS_CONFIG_FILE: join(dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-aws-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      ...extra,
    };
  }

  /** A fresh table with entries in several states, a work queue with 1 job and a DLQ with 3. */
  async function prepareTenant() {
    const tableName = uniqueName("ledger");
    await createLedgerTable(dynalite.dynamodb, tableName);
    const ledger = new DynamoDbLedger({ client: dynalite.dynamodb, tableName });
    const seed: [string, string, LedgerState, Record<string, unknown>?][] = [
      [INFO, "u-deleted", "deleted"],
      [INFO, "u-imported", "imported"],
      [
        INFO,
        "u-archived-q",
        "quarantined",
        { archiveKey: "acme/info/u-archived-q.eml", sha256: "ab".repeat(32) },
      ],
      [INFO, "u-listed-q", "quarantined"],
      [SALES, "u-listed", "listed"],
      [SALES, "u-sales-q", "quarantined"],
    ];
    await ledger.createListed(
      seed.map(([mailboxId, uidl]) => ({
        tenant: TENANT,
        mailboxId,
        uidl,
        listedSize: 100,
        listedAt: 1_000,
      })),
    );
    for (const [mailboxId, uidl, state, extra] of seed) {
      if (state === "listed") continue;
      const quarantine =
        state === "quarantined"
          ? {
              quarantineCode: "TOO_MANY_ATTEMPTS",
              quarantineReason: `gave up on ${uidl}`,
              quarantinedAt: 2_000,
            }
          : {};
      await ledger.transition({ tenant: TENANT, mailboxId, uidl }, ["listed"], state, {
        ...quarantine,
        ...extra,
      });
    }
    const queueUrl = await fauxqs.createQueue(uniqueName("work"));
    const dlqUrl = await fauxqs.createQueue(uniqueName("dlq"));
    const job = (uidl: string) =>
      JSON.stringify({ tenant: TENANT, mailboxId: INFO, uidl, listedSize: 1, listedAt: 1 });
    await fauxqs.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: job("w-1") }));
    for (const uidl of ["d-1", "d-2", "d-3"]) {
      await fauxqs.sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: job(uidl) }));
    }
    const resources = ["--tenant", TENANT, "--tenants-dir", dir, "--table", tableName];
    return {
      ledger,
      tableName,
      queueUrl,
      dlqUrl,
      args: [...resources, "--queue-url", queueUrl, "--dlq-url", dlqUrl],
    };
  }

  async function depth(url: string): Promise<number> {
    const { Attributes: a = {} } = await fauxqs.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
  }

  async function drainUidls(url: string): Promise<string[]> {
    const uidls: string[] = [];
    for (;;) {
      const { Messages = [] } = await fauxqs.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return uidls.sort();
      for (const m of Messages) uidls.push(JSON.parse(m.Body ?? "{}").uidl);
    }
  }

  it("status --aws --json counts each state per mailbox, the queue and DLQ depths and the quarantined", async () => {
    // Prepare
    const tenant = await prepareTenant();
    // Act
    const result = await runCli(["status", "--aws", ...tenant.args, "--json"], awsEnv());
    const text = await runCli(["status", "--aws", ...tenant.args], awsEnv());
    // Assess
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const byId = (id: string) => report.mailboxes.find((m: { mailboxId: string }) => m.mailboxId === id);
    expect(byId(INFO).counts).toEqual({
      listed: 0,
      archived: 0,
      importing: 0,
      imported: 1,
      retained: 0,
      deleted: 1,
      quarantined: 2,
    });
    expect(byId(SALES).counts).toMatchObject({ listed: 1, quarantined: 1, deleted: 0 });
    expect(
      byId(INFO)
        .quarantined.map((q: { uidl: string }) => q.uidl)
        .sort(),
    ).toEqual(["u-archived-q", "u-listed-q"]);
    expect(byId(SALES).quarantined).toEqual([
      {
        uidl: "u-sales-q",
        code: "TOO_MANY_ATTEMPTS",
        reason: "gave up on u-sales-q",
        at: new Date(2_000).toISOString(),
      },
    ]);
    expect(report.queue).toMatchObject({ url: tenant.queueUrl, visible: 1, inFlight: 0, delayed: 0 });
    expect(report.deadLetterQueue).toMatchObject({ url: tenant.dlqUrl, visible: 3 });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("dead-letter queue: 3 message(s)");
    expect(text.stdout).toContain("gave up on u-listed-q");
  });

  it("redrive --aws moves every DLQ message to the work queue", async () => {
    // Prepare
    const tenant = await prepareTenant();
    // Act
    const result = await runCli(["redrive", "--aws", ...tenant.args, "--json"], awsEnv());
    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      action: "redrive",
      moved: 3,
      failed: 0,
      stoppedAtMax: false,
    });
    expect(await depth(tenant.dlqUrl)).toBe(0);
    expect(await drainUidls(tenant.queueUrl)).toEqual(["d-1", "d-2", "d-3", "w-1"]);
  });

  it("quarantine retry --aws releases the quarantined messages and enqueues their copy jobs", async () => {
    // Prepare
    const tenant = await prepareTenant();
    const key = (mailboxId: string, uidl: string) => ({ tenant: TENANT, mailboxId, uidl });
    // Act
    const listed = await runCli(["quarantine", "list", "--aws", ...tenant.args, "--json"], awsEnv());
    const retried = await runCli(["quarantine", "retry", "--aws", ...tenant.args, "--json"], awsEnv());
    // Assess
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).messages).toHaveLength(3);
    expect(retried.code, retried.stderr).toBe(0);
    const rows = JSON.parse(retried.stdout).messages as { uidl: string; released: boolean }[];
    expect(rows.map((r) => [r.uidl, r.released]).sort()).toEqual([
      ["u-archived-q", true],
      ["u-listed-q", true],
      ["u-sales-q", true],
    ]);
    expect((await tenant.ledger.get(key(INFO, "u-archived-q")))?.state).toBe("archived");
    expect((await tenant.ledger.get(key(INFO, "u-listed-q")))?.state).toBe("listed");
    expect((await tenant.ledger.get(key(SALES, "u-sales-q")))?.state).toBe("listed");
    expect(await drainUidls(tenant.queueUrl)).toEqual(["u-archived-q", "u-listed-q", "u-sales-q", "w-1"]);
  });

  it("reads the resources from the stack's outputs, and a missing stack says to deploy it", async () => {
    // Prepare
    const tenant = await prepareTenant();
    const cloudFormation = await startCloudFormationStandIn({
      "Pop2Gmail-acme": {
        LedgerTableName: tenant.tableName,
        WorkQueueUrl: tenant.queueUrl,
        DeadLetterQueueUrl: tenant.dlqUrl,
        ArchiveBucketName: "acme-archive",
      },
    });
    const env = awsEnv({ AWS_ENDPOINT_URL_CLOUDFORMATION: cloudFormation.endpoint });
    try {
      // Act
      const fromStack = await runCli(
        ["status", "--aws", "--tenant", TENANT, "--tenants-dir", dir, "--json"],
        env,
      );
      const missing = await runCli(
        ["status", "--aws", "--tenant", TENANT, "--tenants-dir", dir, "--stack", "Pop2Gmail-gone"],
        env,
      );
      // Assess
      expect(fromStack.code, fromStack.stderr).toBe(0);
      const report = JSON.parse(fromStack.stdout);
      expect(report).toMatchObject({ stack: "Pop2Gmail-acme", tableName: tenant.tableName });
      expect(report.deadLetterQueue).toMatchObject({ url: tenant.dlqUrl, visible: 3 });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("no CloudFormation stack Pop2Gmail-gone");
      expect(missing.stderr).toContain("npx cdk deploy");
    } finally {
      cloudFormation.server.close();
    }
  });

  it("without the resource options and no reachable CloudFormation, says which stack and what to pass", async () => {
    // Prepare
    const refused = `http://127.0.0.1:${await findFreePort()}`;
    const tenant = await prepareTenant();
    // Act
    const noStack = await runCli(
      ["status", "--aws", "--tenant", TENANT, "--tenants-dir", dir, "--table", tenant.tableName],
      awsEnv({ AWS_ENDPOINT_URL_CLOUDFORMATION: refused }),
    );
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...withoutCredentials } = awsEnv();
    const noCredentials = await runCli(["status", "--aws", ...tenant.args], withoutCredentials);
    const noTenant = await runCli(["redrive", "--aws", "--json"], awsEnv());
    // Assess
    expect(noStack.code).toBe(1);
    expect(noStack.stderr).toContain("Pop2Gmail-acme");
    expect(noStack.stderr).toContain("what to do");
    expect(noStack.stderr).toContain("--queue-url, --dlq-url");
    expect(noCredentials.code).toBe(2);
    expect(noCredentials.stderr).toContain("no AWS credentials found");
    expect(noCredentials.stderr).toContain("AWS_PROFILE");
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain("--tenant");
  });
});
