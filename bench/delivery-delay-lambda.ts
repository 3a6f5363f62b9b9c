/**
 * Delivery delay through the Lambda path (issue 14 item 1): the real handlers, built by the real
 * `createLambdaDeps`, against Dovecot, fauxqs (SQS), dynalite, the Gmail API stand-in and the
 * Secrets Manager stand-in (the pipeline rig, test/integration/pipeline-harness.ts). A driver
 * plays Lambda's part on the wall clock: the tenant's rule runs the keeper every 60 s; the poll
 * queue's event source receives poll messages as fauxqs makes them visible (it honours each
 * message's DelaySeconds) and hands them to the lister, which polls once and sends the next; the
 * work queue's event source feeds the copier; delete-copied runs when the lister starts it.
 * Messages are dropped into the Dovecot maildrop at seeded random moments; the delay of each is
 * from its `deliver()` call to its storage at the Gmail stand-in.
 *
 * Also counts what a poll costs: lister invocations, and the SQS and DynamoDB requests the lister
 * makes per poll (an idle minute first, then the loaded run) and per keeper tick, written to
 * bench/results/delivery-delay-lambda.json for the cost model.
 *
 *   npx tsx bench/delivery-delay-lambda.ts [drops=120] [pollSeconds=10] [spreadSeconds=300] [seed=7] [idleSeconds=60]
 *
 * Smoke run: `npx tsx bench/delivery-delay-lambda.ts 10 10 30 7 10`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { DeleteMessageBatchCommand } from "@aws-sdk/client-sqs";
import { seededRandom } from "../cli/demo/seeded-random";
import { DynamoDbSessionSlots } from "../shared/adapters/dynamodb/dynamodb-session-slots";
import { createChainPorts } from "../shared/adapters/lambda/list-new-messages-deps";
import {
  KEEPER_EVENT,
  makeKeeperHandler,
  makePollChainHandler,
} from "../shared/adapters/lambda/list-new-messages-handler";
import { ENV_NAMES } from "../shared/config/env";
import { STAND_IN_REGION } from "../test/fakes/aws-stand-ins";
import { lambdaContext, sqsEvent } from "../test/fakes/sqs-lambda-events";
import { receiptEntries, receiveBatch } from "../test/fakes/sqs-queue-driver";
import { generateMailbox } from "../test/fixtures/awkward-messages";
import {
  gmailUserOf,
  PipelineRig,
  PipelineWorld,
  pipelineAwsCalls,
} from "../test/integration/pipeline-harness";
import { machineLine, percentile, servedForm, sha256 } from "./support/local-rig";

const USER = "delaybench";

/** Requests by `service:operation` made under `fn` (the recorder's attribution) since `from`. */
function requestsOf(fn: string, from: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const call of pipelineAwsCalls.calls().slice(from)) {
    if (call.function !== fn) continue;
    const key = `${call.service}:${call.operation}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function perUnit(counts: Record<string, number>, units: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, n]) => [key, Math.round((n / Math.max(1, units)) * 1000) / 1000]),
  );
}

async function main(): Promise<void> {
  const drops = Number(process.argv[2] ?? 120);
  const pollSeconds = Number(process.argv[3] ?? 10);
  const spreadSeconds = Number(process.argv[4] ?? 300);
  const seed = Number(process.argv[5] ?? 7);
  const idleSeconds = Number(process.argv[6] ?? 60);
  const startedLine = await machineLine();
  console.log(
    `delivery-delay-lambda: ${startedLine}; ${drops} drops over ${spreadSeconds} s at pollSeconds ${pollSeconds}, seed ${seed}, idle ${idleSeconds} s first`,
  );
  const world = await PipelineWorld.start({ users: [USER] });
  const rig = await PipelineRig.create(world, { user: USER, transport: "plain", pollSeconds });
  // The lister's handlers, attributed to names of their own so keeper and chain calls count apart.
  const env = {
    [ENV_NAMES.ledgerTable]: rig.tableName,
    [ENV_NAMES.pollQueueUrl]: rig.chainQueues.poll,
    [ENV_NAMES.deadLetterQueueUrl]: rig.chainQueues.deadLetters,
    [ENV_NAMES.failedDeletesQueueUrl]: rig.chainQueues.failedDeletes,
  };
  const ports = createChainPorts({
    env,
    dynamodb: rig.deps.clients.dynamodb,
    sqs: rig.deps.clients.sqs,
    clock: rig.clock,
  });
  const slots = new DynamoDbSessionSlots({
    client: rig.deps.clients.dynamodb,
    tableName: rig.tableName,
    now: () => rig.clock.now(),
  });
  const listerDeps = { ...rig.deps, chainPorts: () => ports, sessionSlots: () => slots };
  const keeper = makeKeeperHandler(listerDeps);
  const chain = makePollChainHandler(listerDeps);
  const pollArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${rig.chainQueues.poll.split("/").pop()}`;
  const sqs = world.fauxqs.sqs;

  const stats = { keeperTicks: 0, chainInvocations: 0, pollMessages: 0, copyBatches: 0 };
  let running = true;
  const failures: string[] = [];
  const loop = (name: string, body: () => Promise<boolean>) =>
    (async () => {
      while (running) {
        try {
          // `true`: did work, go again at once (as an event source with a backlog does).
          if (!(await body())) await sleep(100);
        } catch (error) {
          failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
          await sleep(500);
        }
      }
    })();

  // Idle phase: the chain polls an empty maildrop (counted from before the first keeper tick).
  const idleFrom = pipelineAwsCalls.calls().length;
  const idleStats = { ...stats };
  const tick = () =>
    pipelineAwsCalls.within("keeper", async () => {
      stats.keeperTicks++;
      await keeper(KEEPER_EVENT, lambdaContext("list-new-messages", 300_000));
    });
  const keeperLoop = (async () => {
    while (running) {
      await tick();
      const until = Date.now() + 60_000;
      while (running && Date.now() < until) await sleep(200);
    }
  })();
  const chainLoop = loop("poll-chain", async () => {
    const messages = await receiveBatch(sqs, rig.chainQueues.poll);
    if (messages.length === 0) return false;
    stats.chainInvocations++;
    stats.pollMessages += messages.length;
    const response = await pipelineAwsCalls.within("poll-chain", () =>
      chain(sqsEvent(pollArn, messages), lambdaContext("list-new-messages", 300_000)),
    );
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: rig.chainQueues.poll, Entries: receiptEntries(done) }),
      );
    }
    return true;
  });
  const copyLoop = loop("copy", async () => {
    const messages = await rig.receive();
    if (messages.length > 0) {
      stats.copyBatches++;
      await rig.copyMessages(messages);
    }
    await rig.runDeletes();
    return messages.length > 0;
  });

  await sleep(idleSeconds * 1000);
  const idleCalls = requestsOf("poll-chain", idleFrom);
  const idlePolls = stats.pollMessages - idleStats.pollMessages;
  const idleKeeper = requestsOf("keeper", idleFrom);
  const idleTicks = stats.keeperTicks - idleStats.keeperTicks;

  // Loaded phase: drops at seeded random moments.
  const loadFrom = pipelineAwsCalls.calls().length;
  const loadStats = { ...stats };
  const mail = generateMailbox(drops, seed + pollSeconds);
  const random = seededRandom(seed * 31 + pollSeconds);
  const offsets = mail.map(() => random() * spreadSeconds * 1000).sort((a, b) => a - b);
  const dropAt = new Map<string, number[]>();
  const start = Date.now();
  for (const [index, message] of mail.entries()) {
    const wait = start + (offsets[index] ?? 0) - Date.now();
    if (wait > 0) await sleep(wait);
    const hash = sha256(servedForm(message.bytes));
    dropAt.set(hash, [...(dropAt.get(hash) ?? []), Date.now()]);
    await world.dovecot.deliver(USER, message.bytes);
  }
  const gmailUser = gmailUserOf(USER);
  const deadline = Date.now() + (pollSeconds + 60) * 1000;
  while (world.gmail.messages(gmailUser).length < drops && Date.now() < deadline) await sleep(200);
  const loadCalls = requestsOf("poll-chain", loadFrom);
  const loadKeeper = requestsOf("keeper", loadFrom);
  const loadTicks = stats.keeperTicks - loadStats.keeperTicks;
  const loadPolls = stats.pollMessages - loadStats.pollMessages;
  const loadInvocations = stats.chainInvocations - loadStats.chainInvocations;
  const loadSeconds = (Date.now() - start) / 1000;
  running = false;
  await Promise.all([keeperLoop, chainLoop, copyLoop]);

  const delaysMs: number[] = [];
  for (const stored of world.gmail.messages(gmailUser)) {
    const dropped = dropAt.get(sha256(stored.raw))?.shift();
    if (dropped !== undefined) delaysMs.push(stored.importedAt - dropped);
  }
  const [p50, p95, max] = [50, 95, 100].map((p) => percentile(delaysMs, p) / 1000);
  const target = pollSeconds + 2;
  const met = delaysMs.length === drops && (p95 ?? Number.POSITIVE_INFINITY) <= target;
  const finishedLine = await machineLine();
  const result = {
    measuredAt: new Date().toISOString(),
    started: startedLine,
    finished: finishedLine,
    command: `npx tsx bench/delivery-delay-lambda.ts ${drops} ${pollSeconds} ${spreadSeconds} ${seed} ${idleSeconds}`,
    pollSeconds,
    drops,
    arrived: delaysMs.length,
    spreadSeconds,
    delaySeconds: { p50, p95, max },
    targetP95Seconds: target,
    targetMet: met,
    idle: {
      seconds: idleSeconds,
      polls: idlePolls,
      requestsPerPoll: perUnit(idleCalls, idlePolls),
      keeperTicks: idleTicks,
      requestsPerKeeperTick: perUnit(idleKeeper, idleTicks),
    },
    loaded: {
      seconds: Math.round(loadSeconds),
      polls: loadPolls,
      listerInvocations: loadInvocations,
      pollsPerMinute: Math.round((loadPolls / loadSeconds) * 60 * 100) / 100,
      requestsPerPoll: perUnit(loadCalls, loadPolls),
      keeperTicks: loadTicks,
      requestsPerKeeperTick: perUnit(loadKeeper, loadTicks),
    },
    copyBatches: stats.copyBatches,
    driverFailures: failures,
    note: "Requests the lister's code sends per poll, as recorded by the SDK middleware; the event source's own ReceiveMessage/DeleteMessage calls (Lambda's pollers) are not the lister's and are not counted here.",
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/delivery-delay-lambda.json", `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `pollSeconds ${pollSeconds}: ${delaysMs.length}/${drops} arrived (drops over ${spreadSeconds} s); delay p50 ${p50?.toFixed(2)} s, p95 ${p95?.toFixed(2)} s, max ${max?.toFixed(2)} s; target p95 <= ${target} s ${met ? "MET" : "NOT met"}`,
  );
  console.log(
    `idle: ${idlePolls} polls in ${idleSeconds} s; per poll ${JSON.stringify(result.idle.requestsPerPoll)}; per keeper tick ${JSON.stringify(result.idle.requestsPerKeeperTick)}`,
  );
  console.log(
    `loaded: ${loadPolls} polls in ${loadInvocations} lister invocations over ${result.loaded.seconds} s (${result.loaded.pollsPerMinute}/min); per poll ${JSON.stringify(result.loaded.requestsPerPoll)}; per keeper tick (chains running) ${JSON.stringify(result.loaded.requestsPerKeeperTick)}`,
  );
  if (failures.length > 0)
    console.log(`driver failures: ${failures.length}: ${failures.slice(0, 5).join("; ")}`);
  console.log(`finished ${finishedLine}`);
  // The bench's calls carry names no role has: never hand them to the IAM proof.
  pipelineAwsCalls.discard();
  await world.stop();
  if (delaysMs.length !== drops) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
