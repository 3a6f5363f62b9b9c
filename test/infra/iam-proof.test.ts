import { App } from "aws-cdk-lib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAllTenantConfigs } from "../../infra/load-tenant-configs";
import { secretNames } from "../../infra/secret-arns";
import { addTenantStacks } from "../../infra/tenant-app";
import { parseTenantConfig } from "../../shared/config/parse-tenant-config";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";
import { queueDepthsDue } from "../../shared/core/tenant-problems";
import { type RecordedCallsFile, recordedCallsDir } from "../fakes/aws-call-recorder";
import { RawPop3Reader, uidlListing } from "../fakes/raw-pop3-reader";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { awkwardMessages } from "../fixtures/awkward-messages";
import {
  gmailUserOf,
  PipelineRig,
  PipelineWorld,
  pipelineAwsCalls,
  TENANT,
} from "../integration/pipeline-harness";
import { type DeployedStack, deployTemplate, PROOF_ACCOUNT, PROOF_REGION } from "./iam-proof/deployed-stack";
import { HOSTILE_TENANT } from "./iam-proof/hostile-tenant";
import { FUNCTION_IDS, type FunctionName, type IamRequest, ProofAccount } from "./iam-proof/proof-account";
import {
  deployedRequest,
  deployedSecretArn,
  readRecordedFiles,
  secretTagContext,
  tenantResources,
} from "./iam-proof/proof-requests";
import { TENANTS_DIR } from "./synth-tenants";

/**
 * Issue 12: the IAM proof. The synthesized templates of every tenant in tenants/ plus a hostile
 * tenant are "deployed" on paper into one account (every token resolved to a concrete ARN) and
 * judged by a real policy evaluator (@cloud-copilot/iam-simulate):
 *
 * - too narrow: every AWS call the handlers made against the stand-ins (recorded by an SDK
 *   middleware, test/fakes/aws-call-recorder.ts) must be Allowed for the calling function's role,
 *   together with the key policy (SSE-KMS) and the queue/bucket policies. The calls of a small
 *   pipeline run in this file are always proven; calls the pipeline suites recorded in the last
 *   hours (files in `recordedCallsDir()`) are proven too when present, so no test order matters.
 * - too wide: a matrix of calls that must be denied (other tenants' data, deletes, key deletion).
 * - service paths: CloudWatch -> SNS (+ KMS), EventBridge -> lister, SQS -> copier, lister ->
 *   deleter, deleter -> its on-failure destination.
 */

const FUNCTIONS = Object.keys(FUNCTION_IDS) as FunctionName[];
/** Recorded-call files from other suites older than this are ignored (code may have changed since). */
const RECORDED_FILES_MAX_AGE_MS = 6 * 60 * 60 * 1000;

/** The attack: a `?` in a secret name matching tenant example's secrets. */
const WILDCARD_ATTACKER = {
  tenant: "evil",
  alarmEmail: "ops@evil.example",
  mailboxes: [
    {
      id: "info@evil.example",
      pop3: {
        host: "pop.evil.example",
        user: "info@evil.example",
        passwordSecret: "pop2gmail/exampl?/info-pop3-password",
      },
      gmail: { user: "evil@gmail.com", credentialsSecret: "pop2gmail/evil/google-oauth" },
    },
  ],
};

const counts = {
  secretReads: 0,
  recorded: 0,
  recordedRequests: 0,
  distinctRecorded: 0,
  denied: 0,
  servicePaths: 0,
  recordedFiles: 0,
  loginDelayCalls: 0,
};

let tenants: TenantConfig[];
let account: ProofAccount;
let world: PipelineWorld | undefined;

/** The Dovecot users (and their secrets and Gmail users) of the pipeline runs below. */
const PROOF_USERS = ["iamproof", "iamdelay"] as const;

/** The servers of the pipeline runs, started by the first test that needs them. */
async function pipelineWorld(): Promise<PipelineWorld> {
  world ??= await PipelineWorld.start({ users: PROOF_USERS });
  return world;
}

/** Each recorded authorization of `files`, for each tenant of tenants/, as that tenant's stack. */
function deployedRequests(files: readonly RecordedCallsFile[]): IamRequest[] {
  return files.flatMap((file) =>
    tenants.flatMap((config) =>
      file.calls.flatMap((call) =>
        call.requests.flatMap((request) => deployedRequest(account, config, file, call, request) ?? []),
      ),
    ),
  );
}

/** Synthesizes `configs` in one app, as `cdk synth` does, and "deploys" each stack. */
function deploy(configs: readonly TenantConfig[]): DeployedStack[] {
  const app = new App();
  const stacks = addTenantStacks(app, configs);
  const assembly = app.synth({ validateOnSynthesis: false });
  return stacks.map((stack) =>
    deployTemplate(stack.stackName, assembly.getStackByName(stack.stackName).template),
  );
}

function describeRequest(request: IamRequest): string {
  return `${request.principal.split("/").pop()} ${request.action} ${request.resource} ${JSON.stringify(request.context ?? {})}`;
}

/** Evaluates all requests; returns the ones whose decision is not `expected`. */
async function mismatches(
  requests: readonly IamRequest[],
  expected: "Allowed" | "denied",
): Promise<string[]> {
  const wrong: string[] = [];
  for (const request of requests) {
    const decision = await account.evaluate(request);
    const ok = expected === "Allowed" ? decision === "Allowed" : decision !== "Allowed";
    if (!ok) wrong.push(`${decision}: ${describeRequest(request)}`);
  }
  return wrong;
}

beforeAll(async () => {
  tenants = [...loadAllTenantConfigs(TENANTS_DIR), parseTenantConfig(HOSTILE_TENANT, "hostile tenant")];
  account = new ProofAccount(deploy(tenants), {
    [ADMIN_ROLE]: [{ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] }],
  });
}, 120_000);

afterAll(async () => {
  // Proven here already: not written for the next run to prove again.
  pipelineAwsCalls.discard();
  await world?.stop();
  console.log(
    `IAM proof: ${counts.recorded} AWS calls recorded (${counts.recordedFiles} files from other suites), ` +
      `${counts.loginDelayCalls} of them by a lister copying in a LOGIN-DELAY session; ` +
      `${counts.recordedRequests} authorizations they need proven Allowed (${counts.distinctRecorded} distinct) ` +
      `plus ${counts.secretReads} secret reads; ` +
      `${counts.denied} forbidden calls proven denied; ${counts.servicePaths} service-path calls proven Allowed`,
  );
});

describe("too narrow: every AWS call the handlers make is allowed for their role", () => {
  it("allows every call of a pipeline run (list, copy with multipart and 429 re-sends, delete)", async () => {
    // Prepare: one mailbox through the real handlers against Dovecot and the stand-ins.
    const before = pipelineAwsCalls.calls().length;
    const rig = await PipelineRig.create(await pipelineWorld(), {
      user: "iamproof",
      transport: "plain",
      deleteAfter: "1d",
      // Below a minute, so the keeper starts a chain of poll messages (a minute or slower: the
      // keeper polls it itself, with the same calls but the send).
      pollSeconds: 30,
    });
    await rig.deliver(awkwardMessages({ attachmentBytes: 9 * 1024 * 1024 }));
    // Gmail answers 429 longer than the sink's own retries: the copier re-sends jobs with a delay.
    // Enough of them to outlast the retries however the shared Gmail pacing spreads them over the
    // imports in flight (as in pipeline-faults.test.ts).
    rig.world.gmail.injectFault({
      match: (r) => r.operation === "import" && r.user === gmailUserOf("iamproof"),
      times: 40,
      action: { kind: "status", status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 20 },
    });
    await rig.poll();
    await rig.drain();
    // A day later the retained messages are due: the lister invokes delete-copied.
    rig.clock.advance(2 * 24 * 60 * 60 * 1000);
    await rig.poll();
    await rig.runDeletes();
    expect(await rig.onServer()).toEqual([]);
    // The poll chain (docs/lambda-handlers.md "Sub-minute polling"): the keeper starts it and
    // reads the problem queues; its first message, due at once, polls and sends the next. The
    // queues' depth is read at one tick in five (by the minute), so tick on such a minute.
    while (!queueDepthsDue(rig.clock.now())) rig.clock.advance(60_000);
    await rig.keeperTick();
    expect(await rig.pollChainOnce()).toBe(1);
    const calls = pipelineAwsCalls.calls().slice(before);
    const recorded = {
      source: "iam-proof",
      tenant: TENANT,
      secrets: { pop3: ["pop3/iamproof"], google: ["google/iamproof"] },
      calls,
    };
    const files = [recorded, ...readRecordedFiles(recordedCallsDir(), RECORDED_FILES_MAX_AGE_MS, Date.now())];

    // Act: each recorded authorization, for each tenant of tenants/, as that tenant's stack.
    const requests = deployedRequests(files);
    const wrong = await mismatches(requests, "Allowed");

    // Assess
    const operations = [...new Set(calls.map((c) => `${c.function} ${c.service}:${c.operation}`))].sort();
    expect(operations).toEqual(
      expect.arrayContaining([
        "list-new-messages sqs:SendMessageBatch",
        "list-new-messages sqs:SendMessage",
        "list-new-messages sqs:GetQueueAttributes",
        "list-new-messages dynamodb:Query",
        "list-new-messages dynamodb:UpdateItem",
        "list-new-messages lambda:Invoke",
        "copy-message s3:CreateMultipartUpload",
        "copy-message s3:CopyObject",
        "copy-message sqs:SendMessageBatch",
        "copy-message secretsmanager:GetSecretValue",
        "delete-copied dynamodb:UpdateItem",
      ]),
    );
    expect(wrong).toEqual([]);
    counts.recorded += files.reduce((sum, f) => sum + f.calls.length, 0);
    counts.recordedFiles = files.length - 1;
    counts.recordedRequests += requests.length;
    counts.distinctRecorded = account.distinctRequests;
  }, 300_000);

  it("allows every call of a LOGIN-DELAY poll, in which the lister copies and deletes in its one session", async () => {
    // Prepare: a server that announces LOGIN-DELAY 60 (Cyrus's popminpoll), holding the awkward
    // messages and one large enough for a multipart upload and the in-place metadata copy.
    const before = pipelineAwsCalls.calls().length;
    const user = "iamdelay";
    const messages = awkwardMessages({ attachmentBytes: 9 * 1024 * 1024 }).map((m) => m.bytes);
    const started = await pipelineWorld();
    let rig: PipelineRig | undefined;
    const server = new ScriptedPop3Server({
      users: { [user]: started.users[user] ?? "" },
      messages,
      loginDelay: { seconds: 60, now: () => rig?.clock.now() ?? 0 },
    });
    const { port } = await server.start();
    try {
      rig = await PipelineRig.create(started, { user, pop3Port: port });
      // What the server serves, for the rig's audit of every committing QUIT; then the delay passes.
      const reader = await RawPop3Reader.login("127.0.0.1", port, user, started.users[user] ?? "");
      for (const { number, uidl } of await uidlListing(reader))
        rig.served.set(uidl, await reader.retrieve(number));
      await reader.quit();
      rig.clock.advance(60_000);

      // Act: one scheduled invocation of the lister (one login); nothing else runs.
      const result = await rig.poll();
      const calls = pipelineAwsCalls.calls().slice(before);
      const file = {
        source: "iam-proof login-delay",
        tenant: TENANT,
        secrets: { pop3: [`pop3/${user}`], google: [`google/${user}`] },
        calls,
      };
      const requests = deployedRequests([file]);
      const wrong = await mismatches(requests, "Allowed");

      // Assess: the lister copied and deleted everything in its one login, and its role allows
      // every call that took (archive writes with the key, the Google secret, the ledger).
      expect(result).toMatchObject({ outcome: "listed", polls: 1, copiedInSession: messages.length });
      expect(server.connections).toBe(2);
      expect(server.remainingMessages()).toEqual([]);
      expect(rig.violations).toEqual([]);
      expect(await rig.queueDepth()).toBe(0);
      expect(new Set(calls.map((c) => c.function))).toEqual(new Set(["list-new-messages"]));
      const operations = [...new Set(calls.map((c) => `${c.service}:${c.operation}`))].sort();
      expect(operations).toEqual(
        expect.arrayContaining([
          "s3:CreateMultipartUpload",
          "s3:UploadPart",
          "s3:CompleteMultipartUpload",
          "s3:PutObject",
          "s3:CopyObject",
          "secretsmanager:GetSecretValue",
          "dynamodb:UpdateItem",
        ]),
      );
      expect(wrong).toEqual([]);
      counts.recorded += calls.length;
      counts.loginDelayCalls = calls.length;
      counts.recordedRequests += requests.length;
      counts.distinctRecorded = account.distinctRequests;
    } finally {
      await rig?.stop();
      await server.stop();
    }
  }, 300_000);
});

describe("too narrow: the secrets each function reads", () => {
  it("allows each function to read the secrets its mailboxes name, tagged as this tenant's", async () => {
    // Prepare: the pipeline rig's three handlers share one secret cache, so only the first
    // reader's GetSecretValue is recorded; in Lambda each function reads its own.
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const names = secretNames(config);
      // The lister copies for a LOGIN-DELAY server (docs/pipeline.md "Login delay and UTF8").
      const reads: [FunctionName, string[]][] = [
        ["list-new-messages", names.all],
        ["copy-message", names.all],
        ["delete-copied", names.pop3],
      ];
      for (const [fn, secrets] of reads) {
        for (const name of secrets) {
          requests.push({
            principal: account.roleOf(config.tenant, fn),
            action: "secretsmanager:GetSecretValue",
            resource: deployedSecretArn(name),
            context: secretTagContext(config.tenant),
          });
        }
      }
    }

    // Act
    const wrong = await mismatches(requests, "Allowed");

    // Assess
    expect(wrong).toEqual([]);
    counts.secretReads = requests.length;
  });
});

describe("too wide: calls that must be denied", () => {
  it("denies every function of a tenant the other tenants' secrets, bucket, table, queues, key and functions", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const attacker of tenants) {
      for (const victim of tenants.filter((t) => t.tenant !== attacker.tenant)) {
        const theirs = tenantResources(account, victim.tenant);
        const objectKey = `${theirs.bucketArn}/${victim.tenant}/${victim.mailboxes[0]!.id}/1.eml`;
        const ownPrefixKey = `${theirs.bucketArn}/${attacker.tenant}/x/1.eml`;
        for (const fn of FUNCTIONS) {
          const principal = account.roleOf(attacker.tenant, fn);
          const add = (action: string, resource: string, context: Record<string, string> = {}) =>
            requests.push({ principal, action, resource, context });
          for (const name of secretNames(victim).all) {
            add("secretsmanager:GetSecretValue", deployedSecretArn(name), secretTagContext(victim.tenant));
          }
          for (const action of ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]) {
            add(action, objectKey);
            add(action, ownPrefixKey);
          }
          add("s3:ListBucket", theirs.bucketArn);
          add("s3:ListBucket", theirs.bucketArn, { "s3:prefix": `${attacker.tenant}/` });
          for (const action of [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
          ]) {
            add(action, theirs.tableArn);
          }
          for (const queue of [
            theirs.workQueueArn,
            theirs.deadLetterQueueArn,
            ...(theirs.pollQueueArn === undefined ? [] : [theirs.pollQueueArn]),
            theirs.failedDeletesQueueArn,
          ]) {
            for (const action of [
              "sqs:SendMessage",
              "sqs:ReceiveMessage",
              "sqs:DeleteMessage",
              "sqs:GetQueueAttributes",
            ])
              add(action, queue);
          }
          for (const action of ["kms:Decrypt", "kms:GenerateDataKey"]) add(action, theirs.keyArn);
          for (const target of FUNCTIONS) add("lambda:InvokeFunction", theirs.functions[target]);
        }
      }
    }

    // Act
    const wrong = await mismatches(requests, "denied");

    // Assess
    expect(wrong).toEqual([]);
    counts.denied += requests.length;
  }, 120_000);

  it("denies deleting archive objects or versions, key deletion and reading secrets outside pop2gmail/<tenant>/", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const own = tenantResources(account, config.tenant);
      const key = `${own.bucketArn}/${config.tenant}/${config.mailboxes[0]!.id}/1.eml`;
      for (const fn of FUNCTIONS) {
        const principal = account.roleOf(config.tenant, fn);
        const add = (action: string, resource: string, context: Record<string, string> = {}) =>
          requests.push({ principal, action, resource, context });
        for (const action of [
          "s3:DeleteObject",
          "s3:DeleteObjectVersion",
          "s3:PutLifecycleConfiguration",
          "s3:PutBucketPolicy",
        ]) {
          add(action, action.includes("Object") ? key : own.bucketArn);
        }
        add("s3:ListBucket", own.bucketArn, { "s3:prefix": "" });
        add("s3:ListBucket", own.bucketArn, { "s3:prefix": "other/" });
        // Its own bucket, outside its tenant's prefix.
        for (const outside of [`${config.tenant}-other/x/1.eml`, "1.eml"]) {
          for (const action of ["s3:GetObject", "s3:PutObject"]) add(action, `${own.bucketArn}/${outside}`);
        }
        for (const action of [
          "kms:ScheduleKeyDeletion",
          "kms:DisableKey",
          "kms:PutKeyPolicy",
          "kms:Encrypt",
        ]) {
          add(action, own.keyArn);
        }
        for (const action of ["sqs:PurgeQueue", "sqs:DeleteQueue"]) add(action, own.workQueueArn);
        for (const action of ["dynamodb:DeleteTable", "dynamodb:Scan", "dynamodb:BatchWriteItem"])
          add(action, own.tableArn);
        for (const name of [
          `pop2gmail/${config.tenant}-other/x`,
          `pop2gmail/${config.tenant}`,
          `other/${config.tenant}/x`,
          "pop2gmail/x",
        ]) {
          add("secretsmanager:GetSecretValue", deployedSecretArn(name), secretTagContext(config.tenant));
        }
        // Its own secret names, but without (or with another) tenant tag: not a secret of this tenant.
        for (const name of secretNames(config).all) {
          add("secretsmanager:GetSecretValue", deployedSecretArn(name));
          add("secretsmanager:GetSecretValue", deployedSecretArn(name), secretTagContext("someone-else"));
        }
      }
      // The deleter never sees the Google credentials and never writes the archive (the lister
      // does both: it copies for a LOGIN-DELAY server).
      for (const name of secretNames(config).google.filter((n) => !secretNames(config).pop3.includes(n))) {
        requests.push({
          principal: account.roleOf(config.tenant, "delete-copied"),
          action: "secretsmanager:GetSecretValue",
          resource: deployedSecretArn(name),
          context: secretTagContext(config.tenant),
        });
      }
      requests.push({
        principal: account.roleOf(config.tenant, "delete-copied"),
        action: "s3:PutObject",
        resource: key,
      });
      // Any other role of the account, even with an allow-everything identity policy, cannot
      // delete or disable the key: only the break-glass role may.
      requests.push({ principal: ADMIN_ROLE, action: "kms:ScheduleKeyDeletion", resource: own.keyArn });
      requests.push({ principal: ADMIN_ROLE, action: "kms:DisableKey", resource: own.keyArn });
    }

    // Act
    const wrong = await mismatches(requests, "denied");

    // Assess
    expect(wrong).toEqual([]);
    counts.denied += requests.length;
  }, 120_000);

  it("denies alarm publishes and schedule invocations that come from another tenant or account", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const topic = topicArnOf(account.stack(config.tenant));
      const lister = tenantResources(account, config.tenant).functions["list-new-messages"];
      for (const other of tenants.filter((t) => t.tenant !== config.tenant)) {
        for (const alarm of account.stack(other.tenant).byType("AWS::CloudWatch::Alarm")) {
          requests.push(cloudWatchPublish(topic, alarm.attributes.Arn!));
        }
        for (const rule of account.stack(other.tenant).byType("AWS::Events::Rule")) {
          requests.push(scheduleInvoke(lister, rule.attributes.Arn!));
        }
      }
      requests.push({
        ...cloudWatchPublish(topic, `arn:aws:cloudwatch:${PROOF_REGION}:444455556666:alarm:x`),
        context: {
          "aws:SourceAccount": "444455556666",
          "aws:SourceArn": `arn:aws:cloudwatch:${PROOF_REGION}:444455556666:alarm:x`,
        },
      });
    }

    // Act
    const wrong = await mismatches(requests, "denied");

    // Assess
    expect(wrong).toEqual([]);
    counts.denied += requests.length;
  }, 120_000);

  it("never lets a tenant whose secret name holds '?' read tenant example's secrets", async () => {
    // Prepare
    const example = tenants.find((t) => t.tenant === "example")!;

    // Act: refused at parse or synth time, or else deployed next to example and evaluated.
    let refused: ConfigError | undefined;
    let allowed: string[] = [];
    try {
      const attacker = parseTenantConfig(WILDCARD_ATTACKER, "tenant evil");
      const stacks = deploy([example, attacker]);
      const both = new ProofAccount(stacks);
      const requests = FUNCTIONS.flatMap((fn) =>
        secretNames(example).all.map((name) => ({
          principal: both.roleOf("evil", fn),
          action: "secretsmanager:GetSecretValue",
          resource: deployedSecretArn(name),
          context: secretTagContext("example"),
        })),
      );
      allowed = [];
      for (const request of requests) {
        if ((await both.evaluate(request)) === "Allowed") allowed.push(describeRequest(request));
      }
      counts.denied += requests.length - allowed.length;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      refused = error;
    }

    // Assess
    expect(allowed).toEqual([]);
    expect(refused?.message).toMatch(/\?/);
  });
});

/** A role of the account that is not the break-glass role, allowed everything by IAM. */
const ADMIN_ROLE = `arn:aws:iam::${PROOF_ACCOUNT}:role/Administrator`;

function topicArnOf(stack: DeployedStack): string {
  const topics = stack.byType("AWS::SNS::Topic");
  expect(topics).toHaveLength(1);
  return topics[0]!.attributes.TopicArn!;
}

function cloudWatchPublish(topicArn: string, alarmArn: string): IamRequest {
  return {
    principal: "cloudwatch.amazonaws.com",
    action: "sns:Publish",
    resource: topicArn,
    context: { "aws:SourceAccount": PROOF_ACCOUNT, "aws:SourceArn": alarmArn },
  };
}

function scheduleInvoke(functionArn: string, ruleArn: string): IamRequest {
  return {
    principal: "events.amazonaws.com",
    action: "lambda:InvokeFunction",
    resource: functionArn,
    context: { "aws:SourceAccount": PROOF_ACCOUNT, "aws:SourceArn": ruleArn },
  };
}

describe("service paths: every alarm, schedule and event source can reach its target", () => {
  it("lets CloudWatch publish every alarm of the tenant to its topic and use the topic's key", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const stack = account.stack(config.tenant);
      const topic = topicArnOf(stack);
      const { keyArn } = tenantResources(account, config.tenant);
      const alarms = stack.byType("AWS::CloudWatch::Alarm");
      expect(alarms.length).toBeGreaterThan(0);
      for (const alarm of alarms) {
        const publish = cloudWatchPublish(topic, alarm.attributes.Arn!);
        requests.push(publish);
        for (const action of ["kms:GenerateDataKey", "kms:Decrypt"]) {
          requests.push({ ...publish, action, resource: keyArn });
        }
      }
    }

    // Act
    const wrong = await mismatches(requests, "Allowed");

    // Assess
    expect(wrong).toEqual([]);
    counts.servicePaths += requests.length;
  });

  it("lets the keeper schedule invoke the lister, the lister invoke the deleter, the deleter reach its failure destination, and each send traces", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const stack = account.stack(config.tenant);
      const own = tenantResources(account, config.tenant);
      const rules = stack.byType("AWS::Events::Rule");
      // One per tenant, not per mailbox: the keeper tick.
      expect(rules).toHaveLength(1);
      for (const rule of rules)
        requests.push(scheduleInvoke(own.functions["list-new-messages"], rule.attributes.Arn!));
      requests.push({
        principal: account.roleOf(config.tenant, "list-new-messages"),
        action: "lambda:InvokeFunction",
        resource: own.functions["delete-copied"],
      });
      // Active tracing: the Lambda runtime sends each traced function's segments with its role
      // (not the lister's: its tracing is off, docs/deploy.md section 7).
      for (const fn of FUNCTIONS.filter((f) => f !== "list-new-messages")) {
        for (const action of ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]) {
          requests.push({ principal: account.roleOf(config.tenant, fn), action, resource: "*" });
        }
      }
      const failureDestinations = stack
        .byType("AWS::Lambda::EventInvokeConfig")
        .filter((c) => c.properties.FunctionName === account.functionOf(config.tenant, "delete-copied").ref)
        .map(
          (c) =>
            (c.properties.DestinationConfig as { OnFailure?: { Destination: string } } | undefined)?.OnFailure
              ?.Destination,
        );
      expect(failureDestinations.filter((d) => d !== undefined)).toHaveLength(1);
      for (const destination of failureDestinations) {
        if (destination === undefined) continue;
        const principal = account.roleOf(config.tenant, "delete-copied");
        requests.push({ principal, action: "sqs:SendMessage", resource: destination });
        for (const action of ["kms:GenerateDataKey", "kms:Decrypt"]) {
          requests.push({
            principal,
            action,
            resource: own.keyArn,
            context: { "kms:ViaService": `sqs.${PROOF_REGION}.amazonaws.com` },
          });
        }
      }
    }

    // Act
    const wrong = await mismatches(requests, "Allowed");

    // Assess
    expect(wrong).toEqual([]);
    counts.servicePaths += requests.length;
  });

  it("lets the copier's SQS event source receive, delete and return jobs of the work queue, and the lister's its poll messages", async () => {
    // Prepare
    const requests: IamRequest[] = [];
    for (const config of tenants) {
      const own = tenantResources(account, config.tenant);
      const mappings = account.stack(config.tenant).byType("AWS::Lambda::EventSourceMapping");
      // The poll queue only for a tenant with a mailbox polled more often than once a minute.
      const sources: [FunctionName, string][] = [["copy-message", own.workQueueArn]];
      if (own.pollQueueArn !== undefined) sources.push(["list-new-messages", own.pollQueueArn]);
      expect(mappings.map((m) => m.properties.EventSourceArn).sort()).toEqual(
        sources.map(([, q]) => q).sort(),
      );
      for (const [fn, queueArn] of sources) {
        const principal = account.roleOf(config.tenant, fn);
        for (const action of [
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes",
        ]) {
          requests.push({ principal, action, resource: queueArn });
        }
        requests.push({
          principal,
          action: "kms:Decrypt",
          resource: own.keyArn,
          context: { "kms:ViaService": `sqs.${PROOF_REGION}.amazonaws.com` },
        });
      }
    }

    // Act
    const wrong = await mismatches(requests, "Allowed");

    // Assess
    expect(wrong).toEqual([]);
    counts.servicePaths += requests.length;
  });
});
