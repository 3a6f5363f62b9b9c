import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A stack as DescribeStacks lists it. */
export interface StandInStack {
  readonly name: string;
  readonly status: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly outputs?: Readonly<Record<string, string>>;
}

/** A CloudWatch metric alarm (the stand-in holds their state, it evaluates nothing). */
export interface StandInAlarm {
  readonly name: string;
  readonly state: "OK" | "ALARM" | "INSUFFICIENT_DATA";
  readonly reason?: string;
  readonly updatedAt?: Date;
}

/** One datapoint of a metric: the statistic's value for the period starting at `at`. */
export interface StandInDatapoint {
  readonly at: Date;
  readonly value: number;
}

/** A request the stand-in answered: API name and its input (form fields or JSON body). */
export interface StandInCall {
  readonly api: string;
  readonly input: Record<string, unknown>;
}

/**
 * CloudFormation and CloudWatch on 127.0.0.1, just the calls `pop2gmail fleet status` makes, on
 * the wire protocols the installed clients speak: CloudFormation's query protocol (form POST,
 * XML answers) for DescribeStacks, CloudWatch's JSON 1.0 (`X-Amz-Target:
 * GraniteServiceVersion20100801.<Op>`, epoch-second timestamps) for DescribeAlarms and
 * GetMetricData. Pages like AWS does (NextToken), with page sizes the test chooses, so paging is
 * exercised with a handful of stacks. The same endpoint serves both clients.
 */
export class FleetAwsStandIn {
  readonly calls: StandInCall[] = [];
  stacks: StandInStack[] = [];
  alarms: StandInAlarm[] = [];
  stacksPerPage = 100;
  alarmsPerPage = 100;
  /** When set, CloudWatch answers every request with this error (as AWS does for a missing permission). */
  cloudWatchError: { status: number; type: string; message: string } | undefined;
  private readonly datapoints = new Map<string, StandInDatapoint[]>();
  private server: Server | undefined;
  endpoint = "";

  /** Adds datapoints to a metric identified by namespace, name and its dimensions (any order). */
  putMetric(
    namespace: string,
    metricName: string,
    dimensions: Readonly<Record<string, string>>,
    points: readonly StandInDatapoint[],
  ): void {
    const key = metricKey(namespace, metricName, dimensions);
    this.datapoints.set(key, [...(this.datapoints.get(key) ?? []), ...points]);
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.answer(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }

  /** Forgets stacks, alarms, datapoints and calls; page sizes back to AWS's. */
  reset(): void {
    this.calls.length = 0;
    this.stacks = [];
    this.alarms = [];
    this.datapoints.clear();
    this.stacksPerPage = 100;
    this.alarmsPerPage = 100;
    this.cloudWatchError = undefined;
  }

  /** How many requests of `api` were answered. */
  count(api: string): number {
    return this.calls.filter((c) => c.api === api).length;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const target = req.headers["x-amz-target"];
    if (typeof target === "string") {
      const op = target.split(".").pop() ?? "";
      const input = JSON.parse(body === "" ? "{}" : body) as Record<string, unknown>;
      this.calls.push({ api: op, input });
      const json = (status: number, value: unknown) =>
        res.writeHead(status, { "content-type": "application/x-amz-json-1.0" }).end(JSON.stringify(value));
      const error = this.cloudWatchError;
      if (error !== undefined) return void json(error.status, { __type: error.type, message: error.message });
      if (op === "DescribeAlarms") return void json(200, this.describeAlarms(input));
      if (op === "GetMetricData") return void json(200, this.getMetricData(input));
      return void json(400, { __type: "InvalidAction", message: `the stand-in does not speak ${op}` });
    }
    const form = new URLSearchParams(body);
    const input = Object.fromEntries(form.entries());
    this.calls.push({ api: form.get("Action") ?? "", input });
    if (form.get("Action") !== "DescribeStacks" || form.has("StackName")) {
      res
        .writeHead(400, { "content-type": "text/xml" })
        .end(
          `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>the stand-in lists all stacks only</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
        );
      return;
    }
    res.writeHead(200, { "content-type": "text/xml" }).end(this.describeStacks(form.get("NextToken")));
  }

  private describeStacks(token: string | null): string {
    const start = token === null ? 0 : Number(token);
    const page = this.stacks.slice(start, start + this.stacksPerPage);
    const next =
      start + this.stacksPerPage < this.stacks.length ? String(start + this.stacksPerPage) : undefined;
    const members = page
      .map((s) => {
        const tags = Object.entries(s.tags ?? {})
          .map(([k, v]) => `<member><Key>${xml(k)}</Key><Value>${xml(v)}</Value></member>`)
          .join("");
        const outputs = Object.entries(s.outputs ?? {})
          .map(
            ([k, v]) =>
              `<member><OutputKey>${xml(k)}</OutputKey><OutputValue>${xml(v)}</OutputValue></member>`,
          )
          .join("");
        return `<member><StackName>${xml(s.name)}</StackName><StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/${xml(s.name)}/1</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>${xml(s.status)}</StackStatus><Tags>${tags}</Tags><Outputs>${outputs}</Outputs></member>`;
      })
      .join("");
    return `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks>${members}</Stacks>${next === undefined ? "" : `<NextToken>${next}</NextToken>`}</DescribeStacksResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></DescribeStacksResponse>`;
  }

  private describeAlarms(input: Record<string, unknown>) {
    const prefix = typeof input.AlarmNamePrefix === "string" ? input.AlarmNamePrefix : "";
    const state = typeof input.StateValue === "string" ? input.StateValue : undefined;
    const size = Math.min(this.alarmsPerPage, typeof input.MaxRecords === "number" ? input.MaxRecords : 100);
    const matching = this.alarms
      .filter((a) => a.name.startsWith(prefix) && (state === undefined || a.state === state))
      .sort((a, b) => a.name.localeCompare(b.name));
    const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
    const page = matching.slice(start, start + size);
    return {
      MetricAlarms: page.map((a) => ({
        AlarmName: a.name,
        StateValue: a.state,
        StateReason: a.reason ?? "Threshold Crossed",
        StateUpdatedTimestamp: (a.updatedAt ?? new Date(0)).getTime() / 1000,
      })),
      CompositeAlarms: [],
      ...(start + size < matching.length ? { NextToken: String(start + size) } : {}),
    };
  }

  private getMetricData(input: Record<string, unknown>) {
    const queries = input.MetricDataQueries as {
      Id: string;
      MetricStat: {
        Metric: { Namespace: string; MetricName: string; Dimensions?: { Name: string; Value: string }[] };
      };
    }[];
    if (queries.length > 500) throw new Error("GetMetricData takes at most 500 queries");
    const from = Number(input.StartTime) * 1000;
    const to = Number(input.EndTime) * 1000;
    const descending = input.ScanBy === "TimestampDescending";
    return {
      MetricDataResults: queries.map((q) => {
        const m = q.MetricStat.Metric;
        const dims = Object.fromEntries((m.Dimensions ?? []).map((d) => [d.Name, d.Value]));
        const points = (this.datapoints.get(metricKey(m.Namespace, m.MetricName, dims)) ?? [])
          .filter((p) => p.at.getTime() >= from && p.at.getTime() < to)
          .sort((a, b) => (descending ? b.at.getTime() - a.at.getTime() : a.at.getTime() - b.at.getTime()));
        return {
          Id: q.Id,
          Label: m.MetricName,
          Timestamps: points.map((p) => p.at.getTime() / 1000),
          Values: points.map((p) => p.value),
          StatusCode: "Complete",
        };
      }),
      Messages: [],
    };
  }
}

function metricKey(namespace: string, name: string, dimensions: Readonly<Record<string, string>>): string {
  const dims = Object.entries(dimensions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return `${namespace}|${name}|${dims}`;
}

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
