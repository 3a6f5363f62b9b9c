import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";
import { S3_FORCE_PATH_STYLE_ENV } from "../../shared/adapters/lambda/lambda-deps";
import { ENV_NAMES } from "../../shared/config/env";
import type { CopyJob } from "../../shared/core/model";
import { AwsCallRecorder } from "../fakes/aws-call-recorder";
import { type FauxqsStandIn, STAND_IN_REGION, startFauxqsStandIn, uniqueName } from "../fakes/aws-stand-ins";
import { s3ChecksumsLikeAws } from "../fakes/s3-checksums-like-aws";
import { lambdaContext } from "../fakes/sqs-lambda-events";
import { makeMessage } from "../unit/core/support/harness";
import { HandlerFixture, MAILBOX_A, sqsEventOf, TENANT, tenantEnv } from "./handler-harness";
import { depsWithRealPorts } from "./support/copier-on-stand-ins";

/**
 * The S3 requests the copier makes for one ordinary message (docs/pipeline.md, "Reads of the
 * archive"): the real `S3ArchiveStore` on fauxqs, every other port in memory, the SDK calls
 * recorded (and written for the IAM proof, test/infra/iam-proof.test.ts).
 */

let fauxqs: FauxqsStandIn;
const awsCalls = new AwsCallRecorder();

beforeAll(async () => {
  fauxqs = await startFauxqsStandIn();
});

afterAll(async () => {
  awsCalls.writeTo("handler-copy-message-s3-calls", { tenant: TENANT, secrets: { pop3: [], google: [] } });
  await fauxqs.stop();
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

/** The copier with its S3 archive on fauxqs; `checksums`: S3's check of a write (fauxqs has none). */
async function s3Rig(options: { checksums: boolean }) {
  const bucket = uniqueName("archive");
  await fauxqs.createBucket(bucket);
  const f = new HandlerFixture();
  // The real S3 archive; every other port in memory.
  const deps = depsWithRealPorts(
    f,
    {
      ...tenantEnv(),
      [ENV_NAMES.archiveBucket]: bucket,
      AWS_REGION: STAND_IN_REGION,
      AWS_ENDPOINT_URL_S3: fauxqs.endpoint,
      [S3_FORCE_PATH_STYLE_ENV]: "true",
    },
    ["archive"],
  );
  // The recorder first: it wraps S3's answer, a refused write included.
  awsCalls.attach(deps.clients.s3, "s3");
  const s3 = options.checksums ? s3ChecksumsLikeAws(deps.clients.s3) : undefined;
  const copy = makeCopyMessageHandler(deps);
  return {
    f,
    s3,
    /** Lists one new message in the ledger and on the server; returns its job. */
    newJob: () => f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage())),
    /** One invocation with `job`; returns the S3 operations it made, in order. */
    async copy(job: CopyJob): Promise<{ operations: string[]; failures: number }> {
      const before = awsCalls.calls().length;
      const response = await awsCalls.within("copy-message", () =>
        copy(sqsEventOf([job]), lambdaContext("copy-message")),
      );
      const calls = awsCalls.calls().slice(before);
      return {
        operations: calls.map((c) => `${c.operation}${c.notFound === true ? " (404)" : ""}`),
        failures: response.batchItemFailures.length,
      };
    },
  };
}

describe("copy-message's S3 requests per ordinary message", () => {
  it("reads the archive twice: the lost-ledger check (404) and the Gmail copy; S3's own check of the write is the verification", async () => {
    // Prepare
    const rig = await s3Rig({ checksums: true });

    // Act
    const { operations, failures } = await rig.copy(await rig.newJob());

    // Assess
    expect(failures).toBe(0);
    expect(operations).toEqual(["GetObject (404)", "PutObject", "GetObject"]);
    expect(rig.f.sink.imported).toHaveLength(1);
    expect(rig.f.pop3.source(MAILBOX_A).uidls()).toEqual([]);
  });

  it("reads the object back to verify it when S3 answers no checksum of the write (fauxqs as it is)", async () => {
    // Prepare
    const rig = await s3Rig({ checksums: false });

    // Act
    const { operations, failures } = await rig.copy(await rig.newJob());

    // Assess
    expect(failures).toBe(0);
    expect(operations).toEqual(["GetObject (404)", "PutObject", "GetObject", "GetObject"]);
  });

  it("archives again a message whose bytes S3 received damaged, and imports it only once archived whole", async () => {
    // Prepare
    const rig = await s3Rig({ checksums: true });
    const job = await rig.newJob();
    rig.s3?.corruptNextPut();

    // Act
    const first = await rig.copy(job);
    const afterFirst = await rig.f.ledger.get(job);
    const second = await rig.copy(job);

    // Assess
    expect(first).toEqual({ operations: ["GetObject (404)", "PutObject"], failures: 0 });
    expect(afterFirst).toMatchObject({ state: "listed", attempts: 1 });
    expect(rig.f.queue.calls.map((c) => c.jobs)).toEqual([[job]]);
    expect(second.operations).toEqual(["GetObject (404)", "PutObject", "GetObject"]);
    expect((await rig.f.ledger.get(job))?.state).toBe("deleted");
    expect(rig.f.sink.imported).toHaveLength(1);
  });
});
