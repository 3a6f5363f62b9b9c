/**
 * Dollars per idle mailbox-month and per 10,000 messages, from handler durations measured here
 * and the memory settings of `infra/function-settings.ts`, at the prices of docs/deploy.md §7
 * (AWS list prices, us-east-1, as that section states them on 2026-11-27; not re-checked here).
 *
 * Measured, in child processes running the real function modules (bundled, plain `node`) against
 * Dovecot (implicit TLS), fauxqs, dynalite, the Gmail API stand-in and a Secrets Manager stand-in
 * on loopback:
 * - T_list: a lister invocation on an idle mailbox (pollSeconds 60: one poll per invocation);
 *   the first invocation of a container (secrets fetched, first TLS session) and warm ones.
 * - T_copy: copy-message invocations with one job of ~100 KB (the docs' typical size; messages of
 *   a typical mailbox arrive apart), and with 10 jobs (a backlog: there the Gmail sink paces imports
 *   at the quota, 6,000 units/min = one import per 250 ms, and the invocation waits for it).
 * Loopback has no network latency and this machine's cores are not Lambda's CPU share (256 MB
 * gets ~1/7 of a vCPU, 512 MB ~2/7: full vCPU at 1,769 MB), so a second estimate scales the
 * measured CPU time by 1769 / memory and takes the larger of that and the wall time.
 *
 *   npx tsx bench/cost.ts [idlePolls=20] [singleCopies=10] [copyBatches=3]
 */
import { FUNCTION_SETTINGS } from "../infra/function-settings";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { startAwsRig } from "./support/aws-rig";
import { machineLine, median } from "./support/local-rig";

/** docs/deploy.md §7, "AWS list prices, us-east-1, as published in 2026 (checked 2026-11-27)". */
const PRICE = {
  lambdaRequest: 0.2e-6,
  lambdaGbSecond: 13.3334e-6, // arm64
  dynamoWrite: 0.625e-6,
  dynamoRead: 0.125e-6,
  sqsRequest: 0.4e-6,
  s3PutPer1k: 0.005,
  s3GetPer1k: 0.0004,
  s3IaTransitionPer1k: 0.01,
} as const;
/** docs/deploy.md §7's estimates of DynamoDB units (not measured here). */
const UNITS = { wPoll: 2, rPoll: 2, wMsg: 10, rMsg: 4 } as const;
const MINUTES_PER_MONTH = 43_200;
const FULL_VCPU_MIB = 1769;
const MESSAGE_BYTES = 100 * 1024;

function lambdaCost(requests: number, seconds: number, memoryMiB: number, requestShare = 1): number {
  return (
    requests * (PRICE.lambdaRequest * requestShare + seconds * (memoryMiB / 1024) * PRICE.lambdaGbSecond)
  );
}

async function main(): Promise<void> {
  const idlePolls = Number(process.argv[2] ?? 20);
  const singles = Number(process.argv[3] ?? 10);
  const copyBatches = Number(process.argv[4] ?? 3);
  console.log(`cost: ${await machineLine()}`);
  const rig = await startAwsRig({ pollSeconds: 60 });
  let list: { first: number; warm: number; warmCpu: number };
  let copy: { single: number; singleCpu: number; perMessage: number; perMessageCpu: number };
  try {
    const listed = await rig.runChild(["list", String(idlePolls + 1)]);
    const [first = Number.NaN, ...warm] = listed.durationsMs;
    list = { first, warm: median(warm), warmCpu: median(listed.cpuMs.slice(1)) };
    console.log(
      `lister, idle mailbox: first invocation ${first.toFixed(0)} ms, warm median ${list.warm.toFixed(1)} ms (CPU ${list.warmCpu.toFixed(1)} ms) over ${warm.length}; all: ${listed.durationsMs.map((d) => d.toFixed(0)).join(", ")}`,
    );

    // One warm-up job, `singles` jobs copied one per invocation (a gap between them, as when
    // messages arrive apart), then `copyBatches` full batches of 10 (a backlog).
    const attachment = Math.floor(((MESSAGE_BYTES - 1200) * 57) / 78);
    const total = 1 + singles + copyBatches * 10;
    for (let i = 0; i < total; i++) await rig.deliver(messageWithAttachment(attachment, 7000 + i).bytes);
    await rig.runChild(["list", "1"]);
    const files: string[] = [];
    const sizes: number[] = [];
    for (let received = 0; received < total; ) {
      const event = await rig.receiveEventFile(received < 1 + singles ? 1 : 10);
      if (event.records === 0) break;
      files.push(event.file);
      sizes.push(event.records);
      received += event.records;
    }
    const copied = await rig.runChild(["copy", ...files], { BENCH_GAP_MS: "400" });
    const single = sizes.flatMap((n, i) => (n === 1 && i > 0 ? [i] : []));
    const full = sizes.flatMap((n, i) => (n === 10 ? [i] : []));
    const at = (list: readonly number[], i: number, per: number) => (list[i] ?? Number.NaN) / per;
    copy = {
      single: median(single.map((i) => at(copied.durationsMs, i, 1))),
      singleCpu: median(single.map((i) => at(copied.cpuMs, i, 1))),
      perMessage: median(full.map((i) => at(copied.durationsMs, i, 10))),
      perMessageCpu: median(full.map((i) => at(copied.cpuMs, i, 10))),
    };
    console.log(
      `copier, ~100 KB messages: invocations of ${sizes.join("+")} jobs; one job per invocation (warm, after the first): median ${copy.single.toFixed(1)} ms (CPU ${copy.singleCpu.toFixed(1)} ms); batches of 10: ${copy.perMessage.toFixed(1)} ms per message (CPU ${copy.perMessageCpu.toFixed(1)} ms); all invocations (ms): ${copied.durationsMs.map((d) => d.toFixed(0)).join(", ")}; Gmail holds ${rig.gmail.messages().length}/${total}`,
    );
  } finally {
    await rig.close();
  }

  const listMiB = FUNCTION_SETTINGS.listNewMessages.memoryMiB;
  const copyMiB = FUNCTION_SETTINGS.copyMessage.memoryMiB;
  const scaled = (wallMs: number, cpuMs: number, memoryMiB: number) =>
    Math.max(wallMs, (cpuMs * FULL_VCPU_MIB) / memoryMiB) / 1000;
  const scenarios = [
    {
      name: "as measured (loopback, this machine's CPU), one job per copy invocation",
      tList: list.warm / 1000,
      tCopy: copy.single / 1000,
      perInvocation: 1,
    },
    {
      name: `CPU scaled to Lambda's share (x${(FULL_VCPU_MIB / listMiB).toFixed(1)} lister, x${(FULL_VCPU_MIB / copyMiB).toFixed(1)} copier), one job per copy invocation`,
      tList: scaled(list.warm, list.warmCpu, listMiB),
      tCopy: scaled(copy.single, copy.singleCpu, copyMiB),
      perInvocation: 1,
    },
    {
      name: "as measured, backlog in batches of 10 (paced at the Gmail quota)",
      tList: list.warm / 1000,
      tCopy: copy.perMessage / 1000,
      perInvocation: 10,
    },
  ];
  console.log(
    `settings: lister ${listMiB} MiB, copier ${copyMiB} MiB (infra/function-settings.ts); prices: docs/deploy.md §7 (us-east-1, 2026, checked 2026-11-27)`,
  );
  for (const s of scenarios) {
    const lister = lambdaCost(MINUTES_PER_MONTH, s.tList, listMiB);
    const pollDynamo = MINUTES_PER_MONTH * (UNITS.wPoll * PRICE.dynamoWrite + UNITS.rPoll * PRICE.dynamoRead);
    const n = 10_000;
    const copier = lambdaCost(n, s.tCopy, copyMiB, 1 / s.perInvocation);
    const msgDynamo = n * (UNITS.wMsg * PRICE.dynamoWrite + UNITS.rMsg * PRICE.dynamoRead);
    const msgSqs = 3 * n * PRICE.sqsRequest;
    const msgS3 = (n * (PRICE.s3PutPer1k + PRICE.s3IaTransitionPer1k + PRICE.s3GetPer1k)) / 1000;
    console.log(
      `${s.name}: T_list ${(s.tList * 1000).toFixed(0)} ms, T_copy ${(s.tCopy * 1000).toFixed(0)} ms`,
    );
    console.log(
      `  idle mailbox-month (pollSeconds 60): lister Lambda $${lister.toFixed(3)} + DynamoDB polls $${pollDynamo.toFixed(3)} = $${(lister + pollDynamo).toFixed(3)} (excl. per-mailbox alarm $0.10, metric $0.30, POP3 secret $0.40 and per-tenant fixed costs)`,
    );
    console.log(
      `  per 10,000 messages: copier Lambda $${copier.toFixed(3)} + DynamoDB $${msgDynamo.toFixed(3)} + SQS $${msgSqs.toFixed(3)} + S3 requests $${msgS3.toFixed(3)} = $${(copier + msgDynamo + msgSqs + msgS3).toFixed(3)} (storage extra)`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
