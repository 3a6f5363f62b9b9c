import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretsManagerSecretStore } from "../../shared/adapters/secrets-manager/secrets-manager-secret-store";
import { AccessDeniedError, ConfigError, TransientError } from "../../shared/core/errors";

/**
 * A minimal Secrets Manager on loopback speaking the real JSON 1.1 protocol (no npm stand-in
 * covers Secrets Manager). It serves the secrets it is given and answers with AWS's error shapes.
 */
interface FakeSecretsManager {
  readonly endpoint: string;
  readonly secrets: Map<string, { SecretString?: string; SecretBinary?: string }>;
  readonly errors: Map<string, { status: number; type: string }>;
  calls: number;
  close(): Promise<void>;
}

async function startFakeSecretsManager(): Promise<FakeSecretsManager> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      fake.calls++;
      const { SecretId } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { SecretId: string };
      const reply = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
        response.end(JSON.stringify(body));
      };
      const error = fake.errors.get(SecretId);
      if (error !== undefined) return reply(error.status, { __type: error.type, message: "refused" });
      const secret = fake.secrets.get(SecretId);
      if (secret === undefined) {
        return reply(400, {
          __type: "ResourceNotFoundException",
          message: "Secrets Manager can't find the specified secret.",
        });
      }
      return reply(200, {
        ARN: `arn:aws:secretsmanager:us-east-1:0:secret:${SecretId}`,
        Name: SecretId,
        ...secret,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const fake: FakeSecretsManager = {
    endpoint: `http://127.0.0.1:${port}`,
    secrets: new Map(),
    errors: new Map(),
    calls: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

let fake: FakeSecretsManager;
let client: SecretsManagerClient;

beforeAll(async () => {
  fake = await startFakeSecretsManager();
  client = new SecretsManagerClient({
    endpoint: fake.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  await fake?.close();
});

describe("SecretsManagerSecretStore", () => {
  it("returns a string secret and a binary one read as UTF-8", async () => {
    // Prepare
    fake.secrets.set("acme/pop3/info", { SecretString: "pässwörd" });
    fake.secrets.set("acme/google/bin", {
      SecretBinary: Buffer.from('{"refresh_token":"r"}').toString("base64"),
    });
    const store = new SecretsManagerSecretStore({ client });
    // Act
    const text = await store.get("acme/pop3/info");
    const binary = await store.get("acme/google/bin");
    // Assess
    expect(text).toBe("pässwörd");
    expect(binary).toBe('{"refresh_token":"r"}');
  });

  it("serves repeated and concurrent reads from one call until the TTL passes", async () => {
    // Prepare
    let now = 1_000;
    fake.secrets.set("acme/cached", { SecretString: "v1" });
    const store = new SecretsManagerSecretStore({ client, ttlMs: 60_000, now: () => now });
    const before = fake.calls;
    // Act
    const firstRound = await Promise.all([store.get("acme/cached"), store.get("acme/cached")]);
    now += 59_999;
    const stillCached = await store.get("acme/cached");
    fake.secrets.set("acme/cached", { SecretString: "v2" });
    now += 1;
    const refreshed = await store.get("acme/cached");
    // Assess
    expect(firstRound).toEqual(["v1", "v1"]);
    expect(stillCached).toBe("v1");
    expect(refreshed).toBe("v2");
    expect(fake.calls - before).toBe(2);
  });

  it("reports a missing secret as a ConfigError naming it, and does not cache the failure", async () => {
    // Prepare
    const store = new SecretsManagerSecretStore({ client });
    // Act
    const missing = store.get("acme/not-yet");
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    fake.secrets.set("acme/not-yet", { SecretString: "created" });
    const later = await store.get("acme/not-yet");
    // Assess
    await expect(missing).rejects.toMatchObject({ field: "acme/not-yet", retryable: false });
    expect(later).toBe("created");
  });

  it("maps AccessDenied to a non-retryable error naming the permission, never the value", async () => {
    // Prepare
    fake.errors.set("acme/locked", { status: 400, type: "AccessDeniedException" });
    const store = new SecretsManagerSecretStore({ client });
    // Act
    const attempt = store.get("acme/locked");
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(AccessDeniedError);
    await expect(attempt).rejects.toMatchObject({
      retryable: false,
      hint: expect.stringContaining("secretsmanager:GetSecretValue"),
      message: expect.stringContaining("acme/locked"),
    });
  });

  it("maps a 500 to a retryable TransientError", async () => {
    // Prepare
    fake.errors.set("acme/flaky", { status: 500, type: "InternalServiceError" });
    const store = new SecretsManagerSecretStore({ client });
    // Act
    const attempt = store.get("acme/flaky");
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(TransientError);
  });

  it("never puts a secret's value into an error", async () => {
    // Prepare
    const value = "hunter2-super-secret";
    fake.secrets.set("acme/then-denied", { SecretString: value });
    let now = 0;
    const store = new SecretsManagerSecretStore({ client, ttlMs: 10, now: () => now });
    await store.get("acme/then-denied");
    fake.errors.set("acme/then-denied", { status: 400, type: "AccessDeniedException" });
    now = 100;
    // Act
    const error = await store.get("acme/then-denied").catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(AccessDeniedError);
    expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).not.toContain(value);
    expect((error as Error).message).not.toContain(value);
  });
});
