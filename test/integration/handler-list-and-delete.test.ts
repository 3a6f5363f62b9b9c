import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";
import { makeDeleteCopiedHandler } from "../../shared/adapters/lambda/delete-copied-handler";
import { LambdaDeleteInvoker } from "../../shared/adapters/lambda/delete-invoker";
import { makeListNewMessagesHandler } from "../../shared/adapters/lambda/list-new-messages-handler";
import {
  ConfigError,
  ConnectionClosedError,
  CredentialsError,
  MailboxBusyError,
  ProtocolError,
  TlsError,
} from "../../shared/core/errors";
import { lambdaContext } from "../fakes/sqs-lambda-events";
import { makeMessage } from "../unit/core/support/harness";
import { HandlerFixture, MAILBOX_A, MAILBOX_B, mailboxJson, sqsEventOf, tenantEnv } from "./handler-harness";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const listContext = () => lambdaContext("list-new-messages", 90_000);

describe("list-new-messages handler", () => {
  it("holds the mailbox's session lease until its own deadline plus a margin, not 16 minutes", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.pop3.source(MAILBOX_A).add(makeMessage());
    const acquire = vi.spyOn(f.leases, "acquire");
    const context = { ...listContext(), getRemainingTimeInMillis: () => 80_000 };

    // Act
    await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, context);

    // Assess
    expect(acquire.mock.calls.map((call) => call[3])).toEqual([90_000]);
  });

  it("polls once per invocation at pollSeconds 60 and enqueues the new messages", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.pop3.source(MAILBOX_A).add(makeMessage());
    f.pop3.source(MAILBOX_A).add(makeMessage());

    // Act
    const result = await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, listContext());

    // Assess
    expect(result).toEqual({
      outcome: "listed",
      mailboxId: MAILBOX_A,
      polls: 1,
      newMessages: 2,
      deletePasses: 0,
    });
    expect(f.queue.inner.size).toBe(2);
  });

  it("starts one delete pass with the due UIDLs", async () => {
    // Prepare: two messages copied and retained for a day, then the day passes.
    const f = new HandlerFixture(tenantEnv([mailboxJson(MAILBOX_A, { deleteAfter: "1d", pollSeconds: 30 })]));
    const uidls = [f.pop3.source(MAILBOX_A).add(makeMessage()), f.pop3.source(MAILBOX_A).add(makeMessage())];
    const list = makeListNewMessagesHandler(f.deps);
    await list({ mailboxId: MAILBOX_A }, listContext());
    await makeCopyMessageHandler(f.deps)(sqsEventOf(f.queue.inner.take(10)), lambdaContext("copy-message"));
    f.clock.advance(25 * 60 * 60 * 1000);

    // Act
    const result = await list({ mailboxId: MAILBOX_A }, listContext());
    const deleted = await makeDeleteCopiedHandler(f.deps)(f.deletes[0], lambdaContext("delete-copied"));

    // Assess
    expect(result).toMatchObject({ outcome: "listed", polls: 1, deletePasses: 1 });
    expect(f.deletes).toEqual([{ mailboxId: MAILBOX_A, uidls }]);
    expect(deleted).toEqual({ outcome: "deleted", mailboxId: MAILBOX_A, deleted: 2, committed: true });
    expect(f.pop3.source(MAILBOX_A).uidls()).toEqual([]);
  });

  it("copies and deletes in its one session when the server announces LOGIN-DELAY, and enqueues nothing", async () => {
    // Prepare: Cyrus's popminpoll: LOGIN-DELAY 60, a second login within 60 s is refused.
    const f = new HandlerFixture();
    const source = f.pop3.source(MAILBOX_A);
    source.add(makeMessage());
    source.add(makeMessage());
    let lastLogin: number | undefined;
    f.pop3.open = async (mailbox) => {
      f.pop3.opens.push(mailbox.id);
      const now = f.clock.now();
      if (lastLogin !== undefined && now - lastLogin < 60_000) {
        throw new MailboxBusyError(
          "LOGIN-DELAY",
          "-ERR [LOGIN-DELAY] Logins must be at least 1 minute apart",
        );
      }
      lastLogin = now;
      const session = await source.open(mailbox);
      return Object.assign(session, { capabilities: { utf8: false, loginDelaySeconds: 60 } });
    };

    // Act
    const result = await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, listContext());

    // Assess
    expect(result).toMatchObject({ outcome: "listed", polls: 1, newMessages: 2, copiedInSession: 2 });
    expect(f.pop3.opens).toHaveLength(1);
    expect(f.queue.inner.size).toBe(0);
    expect(f.sink.imported).toHaveLength(2);
    expect(source.uidls()).toEqual([]);
  });

  it("returns a busy mailbox as a normal outcome", async () => {
    // Prepare
    const f = new HandlerFixture();
    await f.leases.acquire({ tenant: "acme", mailboxId: MAILBOX_A }, 1, "a-copier", 60_000);

    // Act
    const result = await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, listContext());

    // Assess
    expect(result).toEqual({ outcome: "busy", mailboxId: MAILBOX_A, polls: 1 });
  });

  it("reports rejected credentials once (event, metric) and returns instead of throwing", async () => {
    // Prepare
    const f = new HandlerFixture(tenantEnv([mailboxJson(MAILBOX_A, { pollSeconds: 10 })]));
    f.pop3.source(MAILBOX_A).failNextOpen(new CredentialsError("pop3", "-ERR [AUTH] Authentication failed"));

    // Act
    const result = await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, listContext());

    // Assess
    expect(result).toEqual({ outcome: "credentials-broken", mailboxId: MAILBOX_A });
    expect(f.pop3.opens).toHaveLength(1);
    const emf = f.powertools.emf().filter((d) => d.CredentialsBroken !== undefined);
    expect(emf).toHaveLength(1);
    expect(emf[0]?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([["service", "Tenant", "RemoteService"]]);
  });

  it("returns a passing fault for the next tick to retry, and throws what needs a human", async () => {
    // Prepare
    const f = new HandlerFixture();
    const list = makeListNewMessagesHandler(f.deps);
    f.pop3.source(MAILBOX_A).failNextOpen(new ConnectionClosedError("pop3", "reset"));

    // Act
    const transient = await list({ mailboxId: MAILBOX_A }, listContext());
    f.pop3.source(MAILBOX_A).failNextOpen(new TlsError("certificate has expired"));
    const tls = list({ mailboxId: MAILBOX_A }, listContext());
    const unknown = list({ mailboxId: "nobody@acme.it" }, listContext());
    const malformed = list({ mailbox: MAILBOX_A }, listContext());

    // Assess
    expect(transient).toEqual({ outcome: "failed", mailboxId: MAILBOX_A, code: "CONNECTION_CLOSED" });
    await expect(tls).rejects.toBeInstanceOf(TlsError);
    await expect(unknown).rejects.toBeInstanceOf(ConfigError);
    await expect(malformed).rejects.toBeInstanceOf(ProtocolError);
  });
});

describe("delete-copied handler", () => {
  it("holds the mailbox's session lease until its own deadline plus a margin, not 16 minutes", async () => {
    // Prepare
    const f = new HandlerFixture();
    const acquire = vi.spyOn(f.leases, "acquire");
    const context = { ...lambdaContext("delete-copied"), getRemainingTimeInMillis: () => 100_000 };

    // Act
    await makeDeleteCopiedHandler(f.deps)({ mailboxId: MAILBOX_A }, context);

    // Assess
    expect(acquire.mock.calls.map((call) => call[3])).toEqual([110_000]);
  });

  it("deletes only what the ledger shows archived and imported, and answers busy when the mailbox is", async () => {
    // Prepare: one message copied, one only listed.
    const f = new HandlerFixture();
    const copied = f.pop3.source(MAILBOX_B).add(makeMessage());
    await makeCopyMessageHandler(f.deps)(
      sqsEventOf([await f.listed(MAILBOX_B, copied)]),
      lambdaContext("copy"),
    );
    f.pop3.source(MAILBOX_B).add(makeMessage());
    const pending = f.pop3.source(MAILBOX_B).add(makeMessage());
    await f.listed(MAILBOX_B, pending);
    const remove = makeDeleteCopiedHandler(f.deps);
    await f.leases.acquire({ tenant: "acme", mailboxId: MAILBOX_B }, 1, "x", 1_000);

    // Act
    const busy = await remove({ mailboxId: MAILBOX_B }, lambdaContext("delete-copied"));
    f.clock.advance(2_000);
    const done = await remove({ mailboxId: MAILBOX_B }, lambdaContext("delete-copied"));
    const invalid = remove({ mailboxId: MAILBOX_B, uidls: ["has space"] }, lambdaContext("delete-copied"));

    // Assess
    expect(busy).toEqual({ outcome: "busy", mailboxId: MAILBOX_B });
    expect(done).toEqual({ outcome: "deleted", mailboxId: MAILBOX_B, deleted: 0, committed: true });
    expect(f.pop3.source(MAILBOX_B).uidls()).toContain(pending);
    expect(f.pop3.source(MAILBOX_B).uidls()).not.toContain(copied);
    await expect(invalid).rejects.toBeInstanceOf(ProtocolError);
  });
});

describe("LambdaDeleteInvoker", () => {
  it("invokes delete-copied asynchronously (InvocationType Event) with the mailbox and UIDLs", async () => {
    // Prepare: a loopback endpoint answering like Lambda's Invoke API does for an async call.
    const seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        seen.push({
          ...(request.method === undefined ? {} : { method: request.method }),
          ...(request.url === undefined ? {} : { url: request.url }),
          headers: request.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        response.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = new LambdaClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: "eu-south-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });

    // Act
    try {
      await new LambdaDeleteInvoker(client, "pop2gmail-acme-delete").invoke({
        mailboxId: MAILBOX_A,
        uidls: ["u1"],
      });
    } finally {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    // Assess
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/2015-03-31/functions/pop2gmail-acme-delete/invocations",
      headers: { "x-amz-invocation-type": "Event" },
    });
    expect(JSON.parse(seen[0]?.body ?? "")).toEqual({ mailboxId: MAILBOX_A, uidls: ["u1"] });
  });
});
