/**
 * Loopback HTTP proxies in front of the AWS stand-ins that count what AWS bills, for
 * `bench/cost.ts`: every request by service and action, the entries of batch actions, and for
 * DynamoDB the capacity units each call consumed.
 *
 * DynamoDB: the proxy adds `ReturnConsumedCapacity: "TOTAL"` to every data-plane call (dynalite
 * then computes the base table's units as DynamoDB does: 1 write unit per started KB of the larger
 * of the old and new item, 1 read unit per started 4 KB, half for eventually consistent reads).
 * Dynalite charges nothing for a Query that returns no item (DynamoDB: at least one read, 0.5
 * unit eventually consistent; counted so here), and neither a global secondary index nor a failed
 * conditional write, so for each
 * write the proxy reads the item before and after (its own GetItem calls, not counted) and adds,
 * by DynamoDB's rules (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html,
 * "Provisioned throughput considerations for global secondary indexes": an item entering or
 * leaving the index is one index write of its size, a key change two, an update of a projected
 * attribute one), the `byState` index's units (projection ALL: the whole item), and for a write
 * turned away by its condition the units of the item as it stood (DynamoDB still consumes them,
 * at least 1).
 *
 * Lambda: `Invoke` is answered 202 (as for `InvocationType: Event`) and its payload kept, so the
 * bench can run delete-copied with it.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { LEDGER_TABLE } from "../../shared/adapters/dynamodb/ledger-table";

type AttributeMap = Record<string, unknown>;
const dynaliteDb = createRequire(import.meta.url)("dynalite/db") as {
  itemSize(item: AttributeMap): number;
};

/** One request the functions made, as billed. */
export interface CountedRequest {
  readonly service: string;
  readonly action: string;
  /** Entries of a batch action (`SendMessageBatch`...); 1 otherwise. */
  readonly entries: number;
  /** DynamoDB: read and write units (base table + index), and the item size in bytes after a write. */
  readonly readUnits?: number;
  readonly writeUnits?: number;
  readonly itemBytes?: number;
  /** DynamoDB: the index a Query read (e.g. the keeper's mail checks on `byState`). */
  readonly index?: string;
  /** DynamoDB: the Query had a FilterExpression (only `Ledger.findInState`, the keeper's mail checks). */
  readonly filtered?: true;
  /** The request body (SQS and Lambda only: the bench replays poll messages and delete passes). */
  readonly body?: string;
}

export interface CostProxies {
  /** Endpoints to give the functions, by environment variable. */
  readonly env: Readonly<
    Record<
      | "AWS_ENDPOINT_URL_SQS"
      | "AWS_ENDPOINT_URL_DYNAMODB"
      | "AWS_ENDPOINT_URL_S3"
      | "AWS_ENDPOINT_URL_SECRETS_MANAGER"
      | "AWS_ENDPOINT_URL_LAMBDA",
      string
    >
  >;
  /** Requests since the last `take()`, in order. */
  take(): CountedRequest[];
  stop(): Promise<void>;
}

const WRITE_ACTIONS = new Set(["PutItem", "UpdateItem", "DeleteItem"]);
const CAPACITY_ACTIONS = new Set([
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactGetItems",
  "TransactWriteItems",
]);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Forwards a request upstream and returns status, headers and body. */
function forward(
  upstream: URL,
  method: string,
  path: string,
  headers: IncomingMessage["headers"],
  body: Buffer,
): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path,
        headers: { ...headers, host: upstream.host, "content-length": String(body.length) },
      },
      (answer) => {
        readBody(answer).then(
          (b) => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: b }),
          reject,
        );
      },
    );
    out.on("error", reject);
    out.end(body);
  });
}

function reply(res: ServerResponse, status: number, headers: IncomingMessage["headers"], body: Buffer): void {
  const { "content-length": _length, "transfer-encoding": _te, "x-amz-crc32": _crc, ...rest } = headers;
  res.writeHead(status, { ...rest, "content-length": String(body.length) });
  res.end(body);
}

function units(size: number, perUnit: number): number {
  return size === 0 ? 0 : Math.max(1, Math.ceil(size / perUnit));
}

/** A DynamoDB item as the proxy reads it directly from dynalite (not counted). */
async function getItem(upstream: URL, table: string, key: AttributeMap): Promise<AttributeMap | undefined> {
  const body = Buffer.from(JSON.stringify({ TableName: table, Key: key, ConsistentRead: true }));
  const answer = await forward(
    upstream,
    "POST",
    "/",
    {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": "DynamoDB_20120810.GetItem",
      authorization:
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
      "x-amz-date": "20260101T000000Z",
    },
    body,
  );
  return (JSON.parse(answer.body.toString("utf8")) as { Item?: AttributeMap }).Item;
}

function keyOf(input: { Key?: AttributeMap; Item?: AttributeMap }): AttributeMap | undefined {
  if (input.Key !== undefined) return input.Key;
  const item = input.Item;
  if (item === undefined) return undefined;
  return {
    [LEDGER_TABLE.partitionKey]: item[LEDGER_TABLE.partitionKey],
    [LEDGER_TABLE.sortKey]: item[LEDGER_TABLE.sortKey],
  };
}

/** Index write units for an item changing from `before` to `after` (either may be absent). */
function indexWriteUnits(before: AttributeMap | undefined, after: AttributeMap | undefined): number {
  const indexKey = LEDGER_TABLE.stateIndex.partitionKey;
  const inBefore = before?.[indexKey] !== undefined;
  const inAfter = after?.[indexKey] !== undefined;
  const size = (item: AttributeMap | undefined) => (item === undefined ? 0 : dynaliteDb.itemSize(item));
  if (!inBefore && !inAfter) return 0;
  if (!inBefore) return units(size(after), 1024);
  if (!inAfter) return units(size(before), 1024);
  const keyChanged = JSON.stringify(before?.[indexKey]) !== JSON.stringify(after?.[indexKey]);
  if (keyChanged) return units(size(before), 1024) + units(size(after), 1024);
  if (JSON.stringify(before) === JSON.stringify(after)) return 0;
  return units(Math.max(size(before), size(after)), 1024);
}

async function startProxy(
  target: string,
  handle: (req: IncomingMessage, body: Buffer, res: ServerResponse, upstream: URL) => Promise<void>,
): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    readBody(req)
      .then((body) => handle(req, body, res, upstream))
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The action of an AWS JSON-protocol request (`X-Amz-Target: AmazonSQS.SendMessage`). */
function jsonAction(req: IncomingMessage): string {
  return String(req.headers["x-amz-target"] ?? "unknown").replace(/^.*\./, "");
}

/** An S3 REST request's billed kind: PUT/COPY/POST/LIST are one price class, GET/HEAD another. */
function s3Action(req: IncomingMessage): string {
  const url = new URL(req.url ?? "/", "http://x");
  const q = url.searchParams;
  if (req.method === "PUT") return q.has("partNumber") ? "UploadPart" : "PutObject";
  if (req.method === "POST") return q.has("uploads") ? "CreateMultipartUpload" : "CompleteMultipartUpload";
  if (req.method === "DELETE") return q.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
  if (req.method === "HEAD") return "HeadObject";
  if (q.has("list-type") || q.has("prefix")) return "ListObjectsV2";
  return "GetObject";
}

export async function startCostProxies(targets: {
  readonly sqs: string;
  readonly dynamodb: string;
  readonly s3: string;
  readonly secretsManager: string;
}): Promise<CostProxies> {
  let counted: CountedRequest[] = [];
  const note = (r: CountedRequest) => counted.push(r);

  const sqs = await startProxy(targets.sqs, async (req, body, res, upstream) => {
    const action = jsonAction(req);
    let entries = 1;
    if (action.endsWith("Batch")) {
      entries = (JSON.parse(body.toString("utf8")) as { Entries?: unknown[] }).Entries?.length ?? 0;
    }
    note({ service: "sqs", action, entries, body: body.toString("utf8") });
    const a = await forward(upstream, req.method ?? "POST", req.url ?? "/", req.headers, body);
    reply(res, a.status, a.headers, a.body);
  });

  const dynamodb = await startProxy(targets.dynamodb, async (req, body, res, upstream) => {
    const action = jsonAction(req);
    if (!CAPACITY_ACTIONS.has(action)) {
      note({ service: "dynamodb", action, entries: 1 });
      const a = await forward(upstream, req.method ?? "POST", req.url ?? "/", req.headers, body);
      reply(res, a.status, a.headers, a.body);
      return;
    }
    const input = JSON.parse(body.toString("utf8")) as {
      TableName: string;
      Key?: AttributeMap;
      Item?: AttributeMap;
      IndexName?: string;
      FilterExpression?: string;
      ReturnConsumedCapacity?: string;
    };
    const asked = input.ReturnConsumedCapacity;
    const key = WRITE_ACTIONS.has(action) ? keyOf(input) : undefined;
    const before = key === undefined ? undefined : await getItem(upstream, input.TableName, key);
    const rewritten = Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: "TOTAL" }));
    const a = await forward(upstream, req.method ?? "POST", req.url ?? "/", req.headers, rewritten);
    const output = JSON.parse(a.body.toString("utf8")) as {
      __type?: string;
      ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
    };
    const consumed = [output.ConsumedCapacity ?? []].flat().reduce((s, c) => s + (c.CapacityUnits ?? 0), 0);
    // A Query or Scan that returns nothing is still charged one read (0.5 eventually consistent),
    // as a GetItem of a missing item is; dynalite charges it nothing.
    const minimumRead =
      (action === "Query" || action === "Scan") && consumed === 0
        ? (input as { ConsistentRead?: boolean }).ConsistentRead === true
          ? 1
          : 0.5
        : 0;
    const isWrite =
      WRITE_ACTIONS.has(action) || action === "BatchWriteItem" || action === "TransactWriteItems";
    let writeUnits = isWrite ? consumed : 0;
    let itemBytes: number | undefined;
    if (key !== undefined) {
      if (a.status !== 200) {
        // A write turned away by its condition still consumes the units of the item as it stood.
        writeUnits = Math.max(1, units(before === undefined ? 0 : dynaliteDb.itemSize(before), 1024));
      } else {
        const after = await getItem(upstream, input.TableName, key);
        itemBytes = after === undefined ? 0 : dynaliteDb.itemSize(after);
        writeUnits += indexWriteUnits(before, after);
      }
    }
    note({
      service: "dynamodb",
      action:
        a.status === 200 ? action : `${action} (${String(output.__type ?? a.status).replace(/^.*#/, "")})`,
      entries: 1,
      readUnits: isWrite ? 0 : consumed + minimumRead,
      writeUnits,
      ...(itemBytes === undefined ? {} : { itemBytes }),
      ...(input.IndexName === undefined ? {} : { index: input.IndexName }),
      ...(input.FilterExpression === undefined ? {} : { filtered: true as const }),
    });
    // The caller gets what it asked for: no ConsumedCapacity unless it asked.
    if (asked === undefined && a.status === 200) delete (output as Record<string, unknown>).ConsumedCapacity;
    reply(res, a.status, a.headers, Buffer.from(JSON.stringify(output)));
  });

  const s3 = await startProxy(targets.s3, async (req, body, res, upstream) => {
    note({ service: "s3", action: s3Action(req), entries: 1 });
    const a = await forward(upstream, req.method ?? "GET", req.url ?? "/", req.headers, body);
    reply(res, a.status, a.headers, a.body);
  });

  const secrets = await startProxy(targets.secretsManager, async (req, body, res, upstream) => {
    note({ service: "secretsmanager", action: jsonAction(req), entries: 1 });
    const a = await forward(upstream, req.method ?? "POST", req.url ?? "/", req.headers, body);
    reply(res, a.status, a.headers, a.body);
  });

  const lambda = await startProxy("http://127.0.0.1:9", async (_req, body, res) => {
    note({ service: "lambda", action: "Invoke", entries: 1, body: body.toString("utf8") });
    res.writeHead(202, { "content-type": "application/json", "content-length": "0" });
    res.end();
  });

  const proxies = [sqs, dynamodb, s3, secrets, lambda];
  return {
    env: {
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
    },
    take() {
      const taken = counted;
      counted = [];
      return taken;
    },
    async stop() {
      for (const p of proxies) await p.stop();
    },
  };
}
