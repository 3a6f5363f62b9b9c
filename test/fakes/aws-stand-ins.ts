import type { Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";

/**
 * Wire-level stand-ins for the AWS services the adapters use, on 127.0.0.1 and a port the OS
 * picks: fauxqs (SQS and S3) and dynalite (DynamoDB). Clients get dummy credentials and a fixed
 * region so no test ever reaches AWS or reads the developer's profile.
 */

export const STAND_IN_REGION = "us-east-1";
const DUMMY_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;

/** A running fauxqs with SDK clients pointed at it. */
export interface FauxqsStandIn {
  readonly endpoint: string;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  /** Creates a queue over the wire (CreateQueue) and returns its URL. */
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  /** Creates a bucket over the wire (CreateBucket). */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts fauxqs in-process on 127.0.0.1. `startFauxqs()` always binds 0.0.0.0, so this builds the
 * same app with `buildApp()` and listens on loopback itself; resources are then created with the
 * SDK, like the CDK stack would. S3 uses path-style URLs so no wildcard DNS is needed.
 */
export async function startFauxqsStandIn(): Promise<FauxqsStandIn> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const s3 = new S3Client({
    endpoint,
    region: STAND_IN_REGION,
    credentials: DUMMY_CREDENTIALS,
    forcePathStyle: true,
  });
  const sqs = new SQSClient({ endpoint, region: STAND_IN_REGION, credentials: DUMMY_CREDENTIALS });
  return {
    endpoint,
    s3,
    sqs,
    async createQueue(name, attributes) {
      const { QueueUrl } = await sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          ...(attributes === undefined ? {} : { Attributes: attributes }),
        }),
      );
      if (QueueUrl === undefined) throw new Error(`fauxqs returned no URL for queue ${name}`);
      return QueueUrl;
    },
    async createBucket(name) {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      s3.destroy();
      sqs.destroy();
      await app.close();
    },
  };
}

/** A running dynalite (in-memory LevelDB) with a DynamoDB client pointed at it. */
export interface DynaliteStandIn {
  readonly endpoint: string;
  readonly dynamodb: DynamoDBClient;
  /** A fresh client for the same server (e.g. one to count calls on without sharing a stack). */
  newClient(): DynamoDBClient;
  stop(): Promise<void>;
}

type DynaliteFactory = (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;

/** Starts dynalite in-process; tables turn ACTIVE at once (createTableMs 0). */
export async function startDynaliteStandIn(): Promise<DynaliteStandIn> {
  // dynalite is CommonJS without type declarations; its factory returns a plain http.Server.
  const dynalite = createRequire(import.meta.url)("dynalite") as DynaliteFactory;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: DynamoDBClient[] = [];
  const newClient = () => {
    const client = new DynamoDBClient({ endpoint, region: STAND_IN_REGION, credentials: DUMMY_CREDENTIALS });
    clients.push(client);
    return client;
  };
  const dynamodb = newClient();
  return {
    endpoint,
    dynamodb,
    newClient,
    async stop() {
      for (const client of clients) client.destroy();
      // The SDK keeps sockets alive; close them or server.close() waits for their idle timeout.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

/** Counts the DynamoDB operations a client sends (one per logical call, retries not included). */
export interface DynamoDbCallCounter {
  /** Calls since the counter was created or last reset. */
  total(): number;
  /** Calls per operation name, e.g. `{ GetItem: 1, Query: 2 }`. */
  byOperation(): Record<string, number>;
  reset(): void;
  /** Removes the middleware from the client. */
  detach(): void;
}

/**
 * Adds an SDK middleware to `client` that counts every operation it sends. A DocumentClient built
 * on `client` shares its middleware stack, so its calls are counted too. Used to prove that an
 * idle poll costs O(1) DynamoDB calls.
 */
export function countDynamoDbCalls(client: DynamoDBClient): DynamoDbCallCounter {
  const counts = new Map<string, number>();
  const name = `countDynamoDbCalls-${Math.random().toString(36).slice(2)}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = context.commandName?.replace(/Command$/, "") ?? "unknown";
      counts.set(operation, (counts.get(operation) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name },
  );
  return {
    total: () => [...counts.values()].reduce((sum, n) => sum + n, 0),
    byOperation: () => Object.fromEntries(counts),
    reset: () => counts.clear(),
    detach: () => {
      client.middlewareStack.remove(name);
    },
  };
}

/** A unique, valid resource name for one test (tables, buckets, queues). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
