import { inspect } from "node:util";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { S3_FORCE_PATH_STYLE_ENV } from "../../shared/adapters/lambda/copy-message-deps";
import type { DeleteCopiedEvent } from "../../shared/adapters/lambda/delete-invoker";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC_NAMESPACE } from "../../shared/config/metrics";
import { uniqueName } from "../fakes/aws-stand-ins";
import { EventLog } from "../fakes/event-log";
import { OffsetClock } from "../fakes/offset-clock";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { lambdaContext, sqsEvent } from "../fakes/sqs-lambda-events";
import { receiptEntries } from "../fakes/sqs-queue-driver";
import { generateMailbox } from "../fixtures/awkward-messages";
import { CampaignWorld, gmailUserOf, type MailboxCredentials, secretNames } from "./campaign/campaign-world";
import { buildLambdaFunctions, type LambdaFunctions } from "./campaign/lambda-functions";
import { RetrCuttingProxy } from "./campaign/retr-cutting-proxy";

/**
 * Issue 7, "Secrets" (DESIGN.md invariant 6): an end-to-end pass of the real handlers, built from
 * a Lambda-like environment with Powertools printing JSON logs and EMF metrics, with distinctive
 * POP3 passwords, Google client secrets, refresh tokens and the access tokens Google hands out.
 * One mailbox works (through Gmail 5xx, a reset, a timeout, a 429, revoked access tokens and a
 * POP3 line cut mid-RETR), one has a wrong POP3 password, one a revoked refresh token. Every log
 * line, EMF document, pipeline event, handler result, ledger entry and error thrown through a
 * port or a handler (message, hint, cause chain, JSON, inspect) is scanned for the secrets, also
 * for the base64 forms AUTH PLAIN puts on the wire. One mailbox logs in with USER/PASS at a server
 * that echoes the password in its refusal, and Gmail answers some imports and token requests with
 * error bodies that echo the Authorization header and the token form. (APOP is never chosen by the pipeline; its login errors
 * are scanned in test/unit/pop3/pop3-credentials.test.ts.)
 */
const USERS: Record<string, MailboxCredentials> = {
  works: {
    pop3Password: "Pw0k-7f3a9c1e-Pop3Sekret",
    clientId: "client-works.apps.googleusercontent.test",
    clientSecret: "GOCSPX-Cs5b7e2d91SekretWorks",
    refreshToken: "1//Rt8c4f0a62SekretWorks",
  },
  wrongpw: {
    pop3Password: "PwReal-2d6b8e40-Pop3Sekret",
    clientId: "client-wrongpw.apps.googleusercontent.test",
    clientSecret: "GOCSPX-Cs93a1c7e5SekretWrongPw",
    refreshToken: "1//Rt41f9d2c8SekretWrongPw",
  },
  revoked: {
    pop3Password: "PwRev-6e0c3a97-Pop3Sekret",
    clientId: "client-revoked.apps.googleusercontent.test",
    clientSecret: "GOCSPX-Cs07b5e3f1SekretRevoked",
    refreshToken: "1//Rt7a2e6b19SekretRevoked",
  },
  // Logs in with USER/PASS (no SASL) at a server that echoes the password in its refusal.
  echo: {
    pop3Password: "PwEcho-9b4d2f71-Pop3Sekret",
    clientId: "client-echo.apps.googleusercontent.test",
    clientSecret: "GOCSPX-Cs2c8e4a06SekretEcho",
    refreshToken: "1//Rt3f5a9d27SekretEcho",
  },
};
/** What Secrets Manager holds for `wrongpw`: not Dovecot's password, and just as secret. */
const WRONG_STORED_PASSWORD = "PwWrong-5c8e1b3d-Pop3Sekret";
const TENANT = "acme";
const mailboxIdOf = (user: string) => `${user}@acme.test`;

/** Everything the pass produced that an operator or an attacker could read. */
interface Captured {
  readonly output: string[];
  readonly errors: unknown[];
  readonly results: unknown[];
  readonly events: EventLog[];
}

let world: CampaignWorld;
let proxy: RetrCuttingProxy;
let echoServer: ScriptedPop3Server;
let captured: Captured;
let ledgerText = "";

/** Wraps every method of `target` so an error it throws or rejects with is recorded, then rethrown. */
function recordingErrors<T extends object>(
  target: T,
  errors: unknown[],
  wrapResult?: (value: unknown) => unknown,
): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = value.apply(object, args);
          if (!(result instanceof Promise)) return result;
          return result.then(
            (resolved) => (wrapResult === undefined ? resolved : wrapResult(resolved)),
            (error: unknown) => {
              errors.push(error);
              throw error;
            },
          );
        } catch (error) {
          errors.push(error);
          throw error;
        }
      };
    },
  });
}

/** Every readable form of an error and of its causes. */
function errorTexts(error: unknown, depth = 0): string[] {
  if (depth > 8 || error === undefined || error === null) return [];
  const texts = [String(error), inspect(error, { depth: 6, showHidden: true })];
  try {
    texts.push(JSON.stringify(error) ?? "");
  } catch {
    texts.push("(not serialisable)");
  }
  if (error instanceof Error) {
    texts.push(error.message, error.stack ?? "");
    const hint = (error as { hint?: unknown }).hint;
    if (typeof hint === "string") texts.push(hint);
    return [...texts, ...errorTexts(error.cause, depth + 1)];
  }
  return texts;
}

/** The secrets, and the base64 forms of the AUTH PLAIN (RFC 4616) responses built from them. */
function secretStrings(): string[] {
  const plain: string[] = [];
  const passwords = Object.entries(USERS).map(([user, c]) => [user, c.pop3Password] as const);
  for (const [user, password] of [...passwords, ["wrongpw", WRONG_STORED_PASSWORD] as const]) {
    plain.push(password);
    for (const response of [`\0${user}\0${password}`, `${user}\0${user}\0${password}`]) {
      plain.push(Buffer.from(response).toString("base64"));
    }
  }
  for (const credentials of Object.values(USERS))
    plain.push(credentials.clientSecret, credentials.refreshToken);
  return [...plain, ...world.issuedAccessTokens];
}

beforeAll(async () => {
  // Prepare: Powertools as in a Lambda container, printing through console (dev mode), spied.
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_LOG_LEVEL", "DEBUG");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  vi.stubEnv("POWERTOOLS_SERVICE_NAME", "pop2gmail");
  vi.stubEnv("POWERTOOLS_METRICS_NAMESPACE", METRIC_NAMESPACE);
  const output: string[] = [];
  for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      output.push(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 6 }))).join(" "));
    });
  }
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, "write").mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      output.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write);
  }
  captured = { output, errors: [], results: [], events: [] };

  world = await CampaignWorld.start({
    users: USERS,
    gmailSeed: 7,
    storedPop3Passwords: { wrongpw: WRONG_STORED_PASSWORD },
  });
  let retrs = 0;
  proxy = new RetrCuttingProxy(() => (++retrs === 3 ? 300 : undefined));
  await proxy.start(world.dovecot.plainPort);
  // USER/PASS, not AUTH PLAIN: a server that repeats the password it got in its -ERR (issue 10 item 8).
  echoServer = new ScriptedPop3Server({
    users: { echo: "not-the-stored-password" },
    messages: [],
    saslPlain: false,
    reply: ({ command }) =>
      command === "PASS" ? `-ERR [AUTH] PASS ${USERS.echo?.pop3Password} is wrong\r\n` : undefined,
  });
  const echoPort = (await echoServer.start()).port;
  for (const [index, message] of generateMailbox(12, 31).entries()) {
    await world.dovecot.deliver("works", message.bytes);
    if (index < 3) {
      await world.dovecot.deliver("wrongpw", message.bytes);
      await world.dovecot.deliver("revoked", message.bytes);
    }
  }
  world.gmail.revokeRefreshToken(USERS.revoked?.refreshToken ?? "");
  const works = gmailUserOf("works");
  const upload = (r: { operation: string; user: string | undefined }) =>
    r.user === works && (r.operation === "import" || r.operation === "upload-session");
  // A careless server whose error bodies echo the credentials (issue 10 item 7): the access token
  // from the Authorization header on imports, the refresh token and client secret from the form
  // on token requests.
  world.gmail.injectFault({
    match: upload,
    times: 2,
    action: { kind: "status", status: 503, echoCredentials: true },
  });
  world.gmail.injectFault({
    match: (r) => r.operation === "token",
    times: 2,
    action: { kind: "status", status: 502, echoCredentials: true },
  });
  world.gmail.injectFault({ match: upload, times: 2, action: { kind: "status", status: 503 } });
  world.gmail.injectFault({ match: upload, times: 1, action: { kind: "reset" } });
  world.gmail.injectFault({
    match: upload,
    times: 1,
    action: { kind: "status", status: 500, afterStore: true },
  });
  world.gmail.injectFault({ match: upload, times: 1, action: { kind: "stall" } });
  world.gmail.injectFault({
    match: upload,
    times: 1,
    action: { kind: "status", status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 3 },
  });

  const tableName = uniqueName("ledger");
  const bucket = uniqueName("archive");
  const queueName = uniqueName("work");
  await createLedgerTable(world.dynalite.dynamodb, tableName);
  await world.fauxqs.createBucket(bucket);
  const queueUrl = await world.fauxqs.createQueue(queueName, { VisibilityTimeout: "300" });
  const queueArn = `arn:aws:sqs:us-east-1:000000000000:${queueName}`;
  const config = {
    tenant: TENANT,
    google: { apiBaseUrl: world.gmailBaseUrl, tokenUrl: world.tokenUrl },
    mailboxes: Object.keys(USERS).map((user) => ({
      id: mailboxIdOf(user),
      pop3: {
        host: "127.0.0.1",
        port: user === "echo" ? echoPort : proxy.port,
        tls: "none",
        allowPlaintext: true,
        user,
        passwordSecret: secretNames(user).pop3,
      },
      gmail: { user: gmailUserOf(user), credentialsSecret: secretNames(user).google },
    })),
  };
  const deletes: DeleteCopiedEvent[] = [];
  const clock = new OffsetClock();
  const errors = captured.errors;
  const functions: LambdaFunctions = buildLambdaFunctions({
    env: {
      [ENV_NAMES.tenantConfig]: JSON.stringify(config),
      [ENV_NAMES.ledgerTable]: tableName,
      [ENV_NAMES.archiveBucket]: bucket,
      [ENV_NAMES.workQueueUrl]: queueUrl,
      [ENV_NAMES.deleteFunctionName]: "pop2gmail-acme-delete-copied",
      [S3_FORCE_PATH_STYLE_ENV]: "true",
      ...world.awsEndpointEnv(),
    },
    clock,
    // Two attempts per call, so some injected Gmail failures surface through the port as errors.
    gmail: { backoff: { baseDelayMs: 100, maxDelayMs: 1_000 }, requestTimeoutMs: 1_500, maxAttempts: 2 },
    deleteInvoker: {
      invoke: async (event) => {
        deletes.push(event);
      },
    },
    decorators: {
      base: (deps) => {
        const events = new EventLog(deps.telemetry);
        captured.events.push(events);
        return {
          ...deps,
          telemetry: events,
          ledger: recordingErrors(deps.ledger, errors),
          leases: recordingErrors(deps.leases, errors),
          pop3: recordingErrors(deps.pop3, errors, (session) =>
            typeof session === "object" && session !== null ? recordingErrors(session, errors) : session,
          ),
        };
      },
      list: (deps) => ({ ...deps, queue: recordingErrors(deps.queue, errors) }),
      copy: (deps) => ({
        ...deps,
        archive: recordingErrors(deps.archive, errors),
        sink: recordingErrors(deps.sink, errors),
        queue: recordingErrors(deps.queue, errors),
      }),
    },
  });
  const invoke = async (run: () => Promise<unknown>) => {
    try {
      captured.results.push(await run());
    } catch (error) {
      errors.push(error);
    }
  };
  const poll = async () => {
    for (const user of Object.keys(USERS)) {
      await invoke(() =>
        functions.list({ mailboxId: mailboxIdOf(user) }, lambdaContext("list-new-messages")),
      );
    }
    for (let event = deletes.shift(); event !== undefined; event = deletes.shift()) {
      const current = event;
      await invoke(() => functions.remove(current, lambdaContext("delete-copied")));
    }
  };

  // Act: two schedule ticks around the copies; the access tokens are revoked half-way, once one
  // was issued (the echoing token errors above make the first refreshes fail).
  await poll();
  let revoked = false;
  for (let batch = 0; batch < 30; batch++) {
    const { Messages } = await world.fauxqs.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 300,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const messages: Message[] = Messages ?? [];
    if (messages.length === 0) break;
    if (!revoked && world.issuedAccessTokens.length > 0) {
      world.gmail.revokeAccessTokens();
      revoked = true;
    }
    let failed = new Set<string>();
    try {
      const response = await functions.copy(sqsEvent(queueArn, messages), lambdaContext("copy-message"));
      captured.results.push(response);
      failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    } catch (error) {
      errors.push(error);
      failed = new Set(messages.map((m) => m.MessageId ?? ""));
    }
    // A record that failed three times goes to the dead-letter queue (deleted here).
    const retry = messages.filter(
      (m) => failed.has(m.MessageId ?? "") && Number(m.Attributes?.ApproximateReceiveCount ?? 1) < 3,
    );
    const done = messages.filter((m) => !retry.includes(m));
    if (done.length > 0) {
      await world.fauxqs.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: receiptEntries(done) }),
      );
    }
    if (retry.length > 0) {
      await world.fauxqs.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: receiptEntries(retry).map((e) => ({ ...e, VisibilityTimeout: 0 })),
        }),
      );
    }
  }
  clock.offset += 31 * 60_000;
  await poll();

  const ledger = new DynamoDbLedger({ client: world.dynalite.newClient(), tableName });
  for (const user of Object.keys(USERS)) {
    const entries = await ledger.listByState({ tenant: TENANT, mailboxId: mailboxIdOf(user) }, [
      "listed",
      "archived",
      "importing",
      "imported",
      "retained",
      "deleted",
      "quarantined",
    ]);
    ledgerText += JSON.stringify(entries);
  }
}, 90_000);

afterAll(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await proxy?.stop();
  await echoServer?.stop();
  await world?.stop();
});

describe("secrets in what the pipeline leaves behind (DESIGN.md invariant 6)", () => {
  it("went through the paths that handle credentials: logins, token refreshes, both credential failures", () => {
    // Prepare
    const events = captured.events.flatMap((log) => log.events);

    // Act
    const broken = events.flatMap((e) => (e.type === "credentials-broken" ? [e.service] : []));

    // Assess
    expect(world.issuedAccessTokens.length).toBeGreaterThanOrEqual(2);
    expect(events.filter((e) => e.type === "imported").length).toBeGreaterThan(0);
    expect(broken).toEqual(expect.arrayContaining(["pop3", "google"]));
    expect(captured.errors.length).toBeGreaterThan(0);
    expect(captured.output.some((line) => line.includes('"_aws"'))).toBe(true);
    expect(captured.output.some((line) => /"level":\s*"(INFO|WARN|ERROR)"/.test(line))).toBe(true);
    expect(proxy.cutsDone).toBe(1);
    // Error bodies echoing credentials were served, to imports and to token requests.
    expect(world.gmail.countStatus(502, "token")).toBeGreaterThan(0);
    expect(world.gmail.countStatus(503, "import")).toBeGreaterThan(0);
  });

  it("prints no secret in any log line or EMF metric document", () => {
    // Prepare
    const secrets = secretStrings();

    // Act
    const leaks = captured.output.flatMap((line) =>
      secrets.filter((s) => line.includes(s)).map((s) => `${s} in ${line}`),
    );

    // Assess
    expect(captured.output.length).toBeGreaterThan(20);
    expect(leaks).toEqual([]);
  });

  it("puts no secret in any thrown error: message, hint, cause chain, JSON or inspect", () => {
    // Prepare
    const secrets = secretStrings();

    // Act
    const texts = captured.errors.flatMap((error) => errorTexts(error));
    const leaks = texts.flatMap((text) =>
      secrets.filter((s) => text.includes(s)).map((s) => `${s} in ${text}`),
    );

    // Assess
    expect(texts.length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });

  it("puts no secret in pipeline events, handler results or the ledger", () => {
    // Prepare
    const secrets = secretStrings();
    const texts = [
      ...captured.events.flatMap((log) => log.events.map((e) => JSON.stringify(e))),
      ...captured.results.map((r) => JSON.stringify(r) ?? ""),
      ledgerText,
    ];

    // Act
    const leaks = texts.flatMap((text) =>
      secrets.filter((s) => text.includes(s)).map((s) => `${s} in ${text}`),
    );

    // Assess
    expect(ledgerText.length).toBeGreaterThan(2);
    expect(leaks).toEqual([]);
  });
});
