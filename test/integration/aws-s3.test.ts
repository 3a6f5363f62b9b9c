import { Agent } from "node:http";
import { HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeMetadataValue, encodeMetadataValue } from "../../shared/adapters/s3/object-metadata";
import { CHECKED_WRITE_VALID_MS, S3ArchiveStore } from "../../shared/adapters/s3/s3-archive-store";
import { archiveKeyFor } from "../../shared/core/archive-key";
import { AccessDeniedError, IntegrityError, MessageTooLargeError } from "../../shared/core/errors";
import {
  chunked,
  describeArchiveStoreContract,
  metadataFor,
  newPrefix,
  pseudoRandomBody,
  sha256,
} from "../contract/archive-store-contract";
import { type FauxqsStandIn, STAND_IN_REGION, startFauxqsStandIn, uniqueName } from "../fakes/aws-stand-ins";
import { s3ChecksumsLikeAws } from "../fakes/s3-checksums-like-aws";

let fauxqs: FauxqsStandIn;
let bucket: string;

beforeAll(async () => {
  fauxqs = await startFauxqsStandIn();
  bucket = uniqueName("archive");
  await fauxqs.createBucket(bucket);
});

afterAll(async () => {
  await fauxqs?.stop();
});

describeArchiveStoreContract(
  "S3ArchiveStore on fauxqs",
  () => new S3ArchiveStore({ client: fauxqs.s3, bucket, kmsKeyId: "alias/pop2gmail-test" }),
);

/** Records the input of every S3 command the client sends. */
function recordS3Inputs(client: S3Client): {
  commands: { name: string; input: Record<string, unknown> }[];
  detach(): void;
} {
  const name = `record-${Math.random()}`;
  const record = {
    commands: [] as { name: string; input: Record<string, unknown> }[],
    detach: () => void client.middlewareStack.remove(name),
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      record.commands.push({ name: context.commandName ?? "", input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: "initialize", name },
  );
  return record;
}

describe("S3ArchiveStore on fauxqs: metadata, encryption and streaming", () => {
  it("writes uidl, message-id, size and sha256 metadata, non-ASCII values encoded", async () => {
    // Prepare
    const store = new S3ArchiveStore({ client: fauxqs.s3, bucket });
    const key = `${newPrefix()}box/meta.eml`;
    const bytes = Buffer.from("Subject: hi\r\n\r\nbody\r\n");
    // Act
    const digest = await store.put(key, chunked(bytes, [4]), {
      tenant: "acme",
      mailboxId: "info@acme.example",
      uidl: "UID-42",
      messageIdHeader: "<grüße@müller.example>",
    });
    const head = await fauxqs.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    // Assess
    expect(head.Metadata?.uidl).toBe("UID-42");
    expect(head.Metadata?.sha256).toBe(sha256(bytes));
    expect(head.Metadata?.size).toBe(String(digest.size));
    expect(head.Metadata?.["message-id"]).toMatch(/^=\?UTF-8\?B\?/);
    expect(decodeMetadataValue(head.Metadata?.["message-id"] ?? "")).toBe("<grüße@müller.example>");
    expect(head.ContentType).toBe("message/rfc822");
  });

  it("adds size and sha256 metadata to a multipart object after the upload", async () => {
    // Prepare
    const store = new S3ArchiveStore({ client: fauxqs.s3, bucket });
    // archiveKeyFor percent-encodes; the in-place copy must encode the key once more.
    const key = archiveKeyFor({ tenant: "acme", mailboxId: "info@acme.example", uidl: "odd%2F#?&+uidl" });
    const { body, sha256: expectedSha } = pseudoRandomBody(9 * 1024 * 1024, 256 * 1024);
    // Act
    await store.put(key, body, metadataFor("multipart"));
    const head = await fauxqs.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    // Assess
    expect(head.Metadata?.sha256).toBe(expectedSha);
    expect(head.Metadata?.uidl).toBe("multipart");
    expect(head.ContentLength).toBe(9 * 1024 * 1024);
  });

  it("asks for SSE-KMS with the configured key on every write", async () => {
    // Prepare
    const client = fauxqs.s3;
    const recorded = recordS3Inputs(client);
    const store = new S3ArchiveStore({ client, bucket, kmsKeyId: "arn:aws:kms:eu-west-1:1:key/abc" });
    const { body } = pseudoRandomBody(9 * 1024 * 1024, 1024 * 1024);
    // Act
    await store.put(`${newPrefix()}box/small.eml`, chunked(Buffer.from("x"), [1]), metadataFor("s"));
    await store.put(`${newPrefix()}box/large.eml`, body, metadataFor("l"));
    recorded.detach();
    // Assess
    const writes = recorded.commands.filter((c) =>
      ["PutObjectCommand", "CreateMultipartUploadCommand", "CopyObjectCommand"].includes(c.name),
    );
    expect(writes.map((c) => c.name).sort()).toEqual([
      "CopyObjectCommand",
      "CreateMultipartUploadCommand",
      "PutObjectCommand",
    ]);
    for (const write of writes) {
      expect(write.input).toMatchObject({
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: "arn:aws:kms:eu-west-1:1:key/abc",
      });
    }
  });

  it("passes a size-cap error from the source through a multipart upload", async () => {
    // Prepare
    const store = new S3ArchiveStore({ client: fauxqs.s3, bucket });
    const key = `${newPrefix()}box/too-big.eml`;
    const tooLarge = new MessageTooLargeError(9 * 1024 * 1024, "message exceeds the cap");
    async function* overCap(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(1024 * 1024, i);
      throw tooLarge;
    }
    // Act
    const attempt = store.put(key, overCap(), metadataFor("too-big"));
    // Assess
    await expect(attempt).rejects.toBe(tooLarge);
    expect(await store.verify(key, { size: 10 * 1024 * 1024, sha256: "0".repeat(64) })).toBe(false);
  });

  it("maps an S3 AccessDenied to a non-retryable error that names the permission", async () => {
    // Prepare
    const client = fauxqs.s3;
    const denyName = `deny-${Math.random()}`;
    client.middlewareStack.add(
      () => async () => {
        throw Object.assign(new Error("Access Denied"), {
          name: "AccessDenied",
          $fault: "client",
          $metadata: { httpStatusCode: 403 },
        });
      },
      { step: "finalizeRequest", name: denyName },
    );
    const store = new S3ArchiveStore({ client, bucket });
    // Act
    const attempt = store.put(
      `${newPrefix()}box/denied.eml`,
      chunked(Buffer.from("x"), [1]),
      metadataFor("d"),
    );
    // Assess
    try {
      await expect(attempt).rejects.toBeInstanceOf(AccessDeniedError);
      await expect(attempt).rejects.toMatchObject({
        retryable: false,
        service: "archive",
        hint: expect.stringContaining("s3:PutObject"),
      });
    } finally {
      client.middlewareStack.remove(denyName);
    }
  });

  it("verify reads the stored bytes: an object altered behind its metadata fails", async () => {
    // Prepare
    const store = new S3ArchiveStore({ client: fauxqs.s3, bucket });
    const key = `${newPrefix()}box/tampered.eml`;
    const original = Buffer.from("From: a@b\r\n\r\noriginal body\r\n");
    const digest = await store.put(key, chunked(original, [8]), metadataFor("tampered"));
    const head = await fauxqs.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const sameSize = Buffer.from(original);
    sameSize[sameSize.length - 3] = 0x21;
    await fauxqs.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: sameSize, Metadata: head.Metadata }),
    );
    // Act
    const verified = await store.verify(key, digest);
    // Assess
    expect((await fauxqs.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.sha256).toBe(
      digest.sha256,
    );
    expect(verified).toBe(false);
  });

  it("cuts an oversized Message-ID to fit S3's 2 KB metadata limit instead of failing the write", async () => {
    // Prepare
    const store = new S3ArchiveStore({ client: fauxqs.s3, bucket });
    const key = `${newPrefix()}box/long-id.eml`;
    const hostileId = `<${"ü".repeat(3000)}@example.org>`;
    // Act
    await store.put(key, chunked(Buffer.from("x"), [1]), {
      ...metadataFor("long"),
      messageIdHeader: hostileId,
    });
    const head = await fauxqs.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    // Assess
    const stored = head.Metadata?.["message-id"] ?? "";
    expect(stored.length).toBeLessThanOrEqual(1024);
    expect(hostileId.startsWith(decodeMetadataValue(stored))).toBe(true);
  });

  it("keeps plain ASCII metadata as it is and round-trips encoded values", () => {
    // Prepare
    const values = ["<abc@example.org>", " padded ", "=?looks-encoded?=", "ünïcödé", "tab\there", ""];
    // Act
    const encoded = values.map(encodeMetadataValue);
    // Assess
    expect(encoded[0]).toBe("<abc@example.org>");
    for (const value of encoded) expect(value).toMatch(/^[\x20-\x7e]*$/);
    expect(encoded.map(decodeMetadataValue)).toEqual(values);
  });
});

describe("S3ArchiveStore on fauxqs: a body let go unread", () => {
  it("releases its connection when the reader stops before the first chunk (no socket leak)", async () => {
    // Prepare: a client with one socket, so a body that keeps its connection blocks the next call.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const client = new S3Client({
      endpoint: fauxqs.endpoint,
      region: STAND_IN_REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      forcePathStyle: true,
      requestHandler: { httpAgent: agent },
    });
    const store = new S3ArchiveStore({ client, bucket });
    const key = `${newPrefix()}box/unread.eml`;
    const generated = pseudoRandomBody(256 * 1024, 64 * 1024);
    await store.put(key, generated.body, metadataFor(key));

    // Act: open and let go twice without reading (as a check for an existing object does), then
    // read the object whole through the same single socket.
    for (let i = 0; i < 2; i++) {
      const body = await store.open(key);
      await body[Symbol.asyncIterator]().return?.();
    }
    const chunks: Uint8Array[] = [];
    for await (const chunk of await store.open(key)) chunks.push(chunk);

    // Assess
    expect(sha256(Buffer.concat(chunks))).toBe(generated.sha256);
    client.destroy();
    agent.destroy();
  });
});

describe("S3ArchiveStore: S3's own check of a single-part write stands in for reading it back", () => {
  /** A client of its own (the middlewares stay off the suite's), with S3's checksum check played in front of fauxqs. */
  function checkingClient() {
    const client = new S3Client({
      endpoint: fauxqs.endpoint,
      region: STAND_IN_REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      forcePathStyle: true,
    });
    const sent: { name: string; headers: Record<string, string> }[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        sent.push({ name: context.commandName ?? "", headers: { ...(request.headers ?? {}) } });
        return next(args);
      },
      { step: "finalizeRequest", name: "sentHeaders" },
    );
    s3ChecksumsLikeAws(client);
    return { client, sent };
  }

  it("sends the message's SHA-256 as x-amz-checksum-sha256 with the write, and no other checksum", async () => {
    // Prepare
    const { client, sent } = checkingClient();
    const store = new S3ArchiveStore({ client, bucket });
    const bytes = Buffer.from("From: a@b\r\n\r\nchecked body\r\n");

    // Act
    const digest = await store.put(
      `${newPrefix()}box/checked.eml`,
      chunked(bytes, [5]),
      metadataFor("checked"),
    );

    // Assess
    const put = sent.filter((s) => s.name === "PutObjectCommand");
    expect(put).toHaveLength(1);
    const checksums = Object.entries(put[0]?.headers ?? {}).filter(([name]) =>
      name.toLowerCase().startsWith("x-amz-checksum-"),
    );
    expect(checksums).toEqual([
      ["x-amz-checksum-sha256", Buffer.from(digest.sha256, "hex").toString("base64")],
    ]);
    client.destroy();
  });

  it("verifies right after a write S3 checked without a GET; a second verify, or one a minute later, reads the object", async () => {
    // Prepare
    const { client, sent } = checkingClient();
    let now = 1_000_000;
    const store = new S3ArchiveStore({ client, bucket, now: () => now });
    const prefix = newPrefix();
    const bytes = Buffer.from("From: a@b\r\n\r\nbody\r\n");
    const first = await store.put(`${prefix}box/a.eml`, chunked(bytes, [4]), metadataFor("a"));
    const second = await store.put(`${prefix}box/b.eml`, chunked(bytes, [4]), metadataFor("b"));
    const gets = () => sent.filter((s) => s.name === "GetObjectCommand").length;

    // Act
    const rightAfter = await store.verify(`${prefix}box/a.eml`, first);
    const getsRightAfter = gets();
    const again = await store.verify(`${prefix}box/a.eml`, first);
    const getsAgain = gets();
    now += CHECKED_WRITE_VALID_MS;
    const late = await store.verify(`${prefix}box/b.eml`, second);
    const getsLate = gets();

    // Assess
    expect([rightAfter, again, late]).toEqual([true, true, true]);
    expect([getsRightAfter, getsAgain, getsLate]).toEqual([0, 1, 2]);
    client.destroy();
  });

  it("does not take a checked write for another digest, and fails a write S3 received damaged as an integrity fault", async () => {
    // Prepare
    const { client } = checkingClient();
    const checks = s3ChecksumsLikeAws(client);
    const store = new S3ArchiveStore({ client, bucket });
    const key = `${newPrefix()}box/damaged.eml`;
    const bytes = Buffer.from("From: a@b\r\n\r\nbody\r\n");
    const digest = await store.put(key, chunked(bytes, [4]), metadataFor("damaged"));

    // Act
    const otherDigest = await store.verify(key, { ...digest, sha256: sha256(Buffer.from("other")) });
    checks.corruptNextPut();
    const damaged = await store
      .put(key, chunked(bytes, [4]), metadataFor("damaged"))
      .catch((e: unknown) => e);

    // Assess
    expect(otherDigest).toBe(false);
    expect(damaged).toBeInstanceOf(IntegrityError);
    expect(String((damaged as Error).message)).toContain("BadDigest");
    client.destroy();
  });
});
