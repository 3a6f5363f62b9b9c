import { createHash, type Hash } from "node:crypto";
import { Readable } from "node:stream";
import {
  CopyObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { IntegrityError } from "../../core/errors";
import type { ContentDigest } from "../../core/model";
import type { ArchiveMetadata, ArchiveStore } from "../../ports/archive-store";
import { awsErrorName, awsHttpStatus, mapAwsError } from "../aws/map-aws-error";
import { objectMetadata } from "./object-metadata";

/** How an `S3ArchiveStore` is built: an SDK client, the bucket and, in AWS, the KMS key. */
export interface S3ArchiveStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** KMS key id or ARN for SSE-KMS; without it S3 uses the account's `aws/s3` key. */
  readonly kmsKeyId?: string;
  /** Multipart part size; S3 requires at least 5 MiB. Default 8 MiB. */
  readonly partSizeBytes?: number;
  /** Parts uploaded at once. Memory is about (queueSize + 1) x partSize whatever the message size. */
  readonly queueSize?: number;
  /** The clock that dates a write S3 checked (see `verify`). Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * How long S3's own check of a write stands in for reading the object back (see `verify`): the
 * copier verifies right after the write; a later verify (a resume) reads the object.
 */
export const CHECKED_WRITE_VALID_MS = 60_000;
/** Writes remembered at most (a copy that stopped between write and verify leaves one behind). */
const CHECKED_WRITES_MAX = 64;

const MIB = 1024 * 1024;
const CONTENT_TYPE = "message/rfc822";

/**
 * The archive on S3: one object per message at a deterministic key, encrypted with SSE-KMS,
 * with the tenant, mailbox, UIDL, Message-ID, size and SHA-256 as user metadata.
 *
 * `put` streams: a message that fits in one part (almost all mail) is buffered and sent with one
 * PutObject that already carries its SHA-256, as metadata and as `x-amz-checksum-sha256`, which S3
 * checks against the bytes it received before it stores them (docs/pipeline.md, "Reads of the
 * archive"); a larger one goes through lib-storage's multipart `Upload` (memory stays at a few
 * parts for 50 MB or 150 MB) and then gets its SHA-256 metadata by an in-place CopyObject, because
 * metadata must be sent before the bytes whose hash it holds.
 */
export class S3ArchiveStore implements ArchiveStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly encryption: { ServerSideEncryption: ServerSideEncryption; SSEKMSKeyId?: string };
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly now: () => number;
  /** Key -> the digest S3 itself checked when it stored the key's object, and when (see `verify`). */
  private readonly checkedWrites = new Map<string, { readonly digest: ContentDigest; readonly at: number }>();

  constructor(options: S3ArchiveStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.encryption =
      options.kmsKeyId === undefined || options.kmsKeyId === ""
        ? { ServerSideEncryption: "aws:kms" }
        : { ServerSideEncryption: "aws:kms", SSEKMSKeyId: options.kmsKeyId };
    this.partSize = Math.max(options.partSizeBytes ?? 8 * MIB, 5 * MIB);
    this.queueSize = Math.max(options.queueSize ?? 2, 1);
    this.now = options.now ?? Date.now;
  }

  /** Streams `body` to `key` while computing its size and SHA-256; returns that digest. */
  async put(key: string, body: AsyncIterable<Uint8Array>, metadata: ArchiveMetadata): Promise<ContentDigest> {
    // Whatever happens to this write, an earlier one's check no longer speaks for the key.
    this.checkedWrites.delete(key);
    const hash = createHash("sha256");
    let size = 0;
    const iterator = body[Symbol.asyncIterator]();
    const head: Uint8Array[] = [];
    let headBytes = 0;
    let ended = false;
    // Errors of the source (a POP3 drop, MessageTooLargeError) propagate untouched from here.
    while (headBytes <= this.partSize) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      hash.update(next.value);
      head.push(next.value);
      headBytes += next.value.byteLength;
    }
    size = headBytes;
    if (ended) {
      const digest = { size, sha256: hash.digest("hex") };
      await this.putSinglePart(key, Buffer.concat(head), metadata, digest);
      return digest;
    }
    return this.putMultipart(key, head, iterator, hash, headBytes, metadata);
  }

  /**
   * Proves from S3's side that `key` holds `expected`. Right after a single-part `put` (within
   * `CHECKED_WRITE_VALID_MS`, once) S3's own check of that write is the proof: the PutObject
   * carried the SHA-256 as `x-amz-checksum-sha256`, S3 refuses a write whose bytes do not match it
   * (BadDigest, nothing stored) and answered with the checksum it stored, so no GET is needed
   * (docs/pipeline.md, "Reads of the archive"). Otherwise (a multipart object, whose S3 SHA-256 is
   * a composite of the part hashes, not the message's; a store that answered no checksum, such as
   * fauxqs, which ignores `x-amz-checksum-*`; a later verify on a resume) the object is read back
   * and hashed: the `sha256` metadata we wrote is no proof of the stored bytes. Reading costs one
   * GET of the object (measured against fauxqs on loopback: 0.4-0.6 s for 50 MB, 1.7 s for 120 MB).
   */
  async verify(key: string, expected: ContentDigest): Promise<boolean> {
    const checked = this.checkedWrites.get(key);
    this.checkedWrites.delete(key);
    if (
      checked !== undefined &&
      this.now() - checked.at < CHECKED_WRITE_VALID_MS &&
      checked.digest.size === expected.size &&
      checked.digest.sha256 === expected.sha256
    ) {
      return true;
    }
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isMissingObject(error)) return false;
      throw mapAwsError(error, this.context("s3:GetObject", key));
    }
    const stream = asByteStream(response.Body);
    if (response.ContentLength !== undefined && response.ContentLength !== expected.size) {
      stream?.destroy();
      return false;
    }
    if (stream === undefined) return expected.size === 0 && expected.sha256 === emptySha256();
    const hash = createHash("sha256");
    let size = 0;
    try {
      for await (const chunk of stream) {
        hash.update(chunk);
        size += chunk.byteLength;
      }
    } catch (error) {
      throw mapAwsError(error, this.context("s3:GetObject", key));
    }
    return size === expected.size && hash.digest("hex") === expected.sha256;
  }

  /** Streams the stored object; a missing object is an `IntegrityError` (re-archive from POP3). */
  async open(key: string): Promise<AsyncIterable<Uint8Array>> {
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isMissingObject(error)) {
        throw new IntegrityError(`archive object ${key} is missing`, { cause: error });
      }
      throw mapAwsError(error, this.context("s3:GetObject", key));
    }
    const stream = asByteStream(response.Body);
    return stream === undefined ? emptyStream() : this.mapStreamErrors(stream, key);
  }

  /** Pages ListObjectsV2 under `prefix`. */
  async *list(prefix: string): AsyncIterable<{ key: string; lastModified: number }> {
    let continuationToken: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.listPage(prefix, continuationToken);
      } catch (error) {
        throw mapAwsError(error, this.context("s3:ListBucket", prefix));
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key, lastModified: object.LastModified?.getTime() ?? 0 };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  private listPage(prefix: string, continuationToken: string | undefined) {
    return this.client.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: prefix,
        ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
      }),
    );
  }

  private async putSinglePart(
    key: string,
    bytes: Buffer,
    metadata: ArchiveMetadata,
    digest: ContentDigest,
  ): Promise<void> {
    const checksum = Buffer.from(digest.sha256, "hex").toString("base64");
    let stored: string | undefined;
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: CONTENT_TYPE,
          Metadata: objectMetadata(metadata, digest),
          // S3 stores the bytes only if their SHA-256 is this one (BadDigest otherwise).
          ChecksumSHA256: checksum,
          ...this.encryption,
        }),
      );
      stored = response.ChecksumSHA256;
    } catch (error) {
      if (awsErrorName(error) === "BadDigest") {
        // S3 received other bytes than were sent and stored nothing: as a failed verify, a
        // message-level fault the next attempt retries.
        throw new IntegrityError(`archive ${key}: S3 received other bytes than were sent (BadDigest)`, {
          cause: error,
        });
      }
      throw mapAwsError(error, this.context(this.putPermission(), key));
    }
    if (stored !== checksum || bytes.byteLength !== digest.size) return;
    if (this.checkedWrites.size >= CHECKED_WRITES_MAX) {
      const oldest = this.checkedWrites.keys().next().value;
      if (oldest !== undefined) this.checkedWrites.delete(oldest);
    }
    this.checkedWrites.set(key, { digest, at: this.now() });
  }

  private async putMultipart(
    key: string,
    head: Uint8Array[],
    rest: AsyncIterator<Uint8Array>,
    hash: Hash,
    headBytes: number,
    metadata: ArchiveMetadata,
  ): Promise<ContentDigest> {
    let size = headBytes;
    let sourceError: unknown;
    async function* source(): AsyncGenerator<Uint8Array> {
      yield* head;
      head.length = 0; // let the first part's buffers go once lib-storage holds them
      try {
        for (let next = await rest.next(); !next.done; next = await rest.next()) {
          hash.update(next.value);
          size += next.value.byteLength;
          yield next.value;
        }
      } catch (error) {
        sourceError = error;
        throw error;
      }
    }
    const upload = new Upload({
      client: this.client,
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: Readable.from(source(), { objectMode: false, highWaterMark: 64 * 1024 }),
        ContentType: CONTENT_TYPE,
        Metadata: objectMetadata(metadata),
        ...this.encryption,
      },
    });
    try {
      await upload.done();
    } catch (error) {
      // Let the source clean up (e.g. a POP3 stream left half read) before reporting.
      await rest.return?.().catch(() => undefined);
      // The source's own error (e.g. MessageTooLargeError) says more than the aborted upload.
      throw sourceError ?? mapAwsError(error, this.context(this.putPermission(), key));
    }
    const digest = { size, sha256: hash.digest("hex") };
    await this.replaceMetadata(key, metadata, digest);
    return digest;
  }

  /** In-place copy that adds size and SHA-256 to the metadata (S3 metadata is immutable otherwise). */
  private async replaceMetadata(
    key: string,
    metadata: ArchiveMetadata,
    digest: ContentDigest,
  ): Promise<void> {
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`,
          MetadataDirective: "REPLACE",
          ContentType: CONTENT_TYPE,
          Metadata: objectMetadata(metadata, digest),
          ...this.encryption,
        }),
      );
    } catch (error) {
      throw mapAwsError(error, this.context("s3:GetObject and s3:PutObject", key));
    }
  }

  /**
   * The body as an iterable that maps stream errors and always lets the connection go: `return()`
   * destroys the stream even before the first read (a generator closed before its first `next()`
   * never runs its `finally`, which kept one pooled socket busy per unread body).
   */
  private mapStreamErrors(stream: Readable, key: string): AsyncIterable<Uint8Array> {
    const context = this.context("s3:GetObject", key);
    return {
      [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
        const chunks = stream[Symbol.asyncIterator]();
        return {
          async next() {
            try {
              const result = await chunks.next();
              if (result.done === true) stream.destroy();
              return result as IteratorResult<Uint8Array>;
            } catch (error) {
              stream.destroy();
              throw mapAwsError(error, context);
            }
          },
          async return() {
            stream.destroy();
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  private putPermission(): string {
    return "s3:PutObject and kms:GenerateDataKey";
  }

  private context(action: string, key: string) {
    return { service: "archive" as const, action, resource: `s3://${this.bucket}/${key}` };
  }
}

function isMissingObject(error: unknown): boolean {
  const name = awsErrorName(error);
  return name === "NoSuchKey" || name === "NotFound" || awsHttpStatus(error) === 404;
}

/** The SDK's Node body is an `IncomingMessage` (a Readable); anything else is unexpected here. */
function asByteStream(body: GetObjectCommandOutput["Body"]): Readable | undefined {
  return body instanceof Readable ? body : undefined;
}

function emptySha256(): string {
  return createHash("sha256").digest("hex");
}

async function* emptyStream(): AsyncIterable<Uint8Array> {}
