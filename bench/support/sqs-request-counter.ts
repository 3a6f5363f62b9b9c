/**
 * A loopback HTTP proxy in front of fauxqs that counts SQS requests by action (the SDK's JSON
 * protocol names it in `X-Amz-Target`, e.g. `AmazonSQS.SendMessageBatch`) and the entries of the
 * batch actions, so a bench can say how many requests (the unit SQS bills) a drain took.
 */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface SqsRequestCounter {
  readonly endpoint: string;
  /** Requests per action, e.g. `{ ReceiveMessage: 12, SendMessageBatch: 3 }`. */
  readonly requests: Map<string, number>;
  /** Entries of the batch actions (`SendMessageBatch`, `DeleteMessageBatch`, ...). */
  readonly entries: Map<string, number>;
  total(): number;
  reset(): void;
  stop(): Promise<void>;
}

export async function startSqsRequestCounter(target: string): Promise<SqsRequestCounter> {
  const upstream = new URL(target);
  const requests = new Map<string, number>();
  const entries = new Map<string, number>();
  const server = createServer((req, res) => {
    const action = String(req.headers["x-amz-target"] ?? "unknown").replace(/^AmazonSQS\./, "");
    requests.set(action, (requests.get(action) ?? 0) + 1);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (action.endsWith("Batch")) {
        try {
          const parsed = JSON.parse(body.toString("utf8")) as { Entries?: unknown[] };
          entries.set(action, (entries.get(action) ?? 0) + (parsed.Entries?.length ?? 0));
        } catch {
          // Not JSON: counted as a request only.
        }
      }
      const forward = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    entries,
    total: () => [...requests.values()].reduce((a, b) => a + b, 0),
    reset: () => {
      requests.clear();
      entries.clear();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
