import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { leaseSecretWriteLock } from "../../shared/adapters/secrets-manager/secret-write-lock";
import { SecretsManagerSecretStore } from "../../shared/adapters/secrets-manager/secrets-manager-secret-store";
import { SecretsManagerSecretWriter } from "../../shared/adapters/secrets-manager/secrets-manager-secret-writer";
import { ConfigError, TransientError } from "../../shared/core/errors";
import type { SessionLeases } from "../../shared/ports/session-leases";
import {
  type DynaliteStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";
import { secretsManagerHandler } from "../fakes/secrets-manager-stand-in";

/**
 * One secret per tenant (docs/deploy.md, section 2): `pop2gmail/acme/credentials#info@acme.it`
 * is the key `info@acme.it` of the JSON object in the secret `pop2gmail/acme/credentials`, read
 * and written through the Secrets Manager stand-in (JSON 1.1 on loopback).
 */
const SECRET = "pop2gmail/acme/credentials";
const PASSWORD = "pop3-password-do-not-log";

interface CountingSecretsManager {
  readonly secrets: Map<string, string>;
  /** Requests by operation, e.g. `GetSecretValue`. */
  readonly calls: Map<string, number>;
  client(): SecretsManagerClient;
}

let server: Server;
let standIn: CountingSecretsManager;
const clients: SecretsManagerClient[] = [];

beforeAll(async () => {
  const secrets = new Map<string, string>();
  const calls = new Map<string, number>();
  const handle = secretsManagerHandler(secrets);
  server = createServer((request, response) => {
    const operation = String(request.headers["x-amz-target"]).replace(/^.*\./, "");
    calls.set(operation, (calls.get(operation) ?? 0) + 1);
    handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  standIn = {
    secrets,
    calls,
    client: () => {
      const client = new SecretsManagerClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: STAND_IN_REGION,
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
      });
      clients.push(client);
      return client;
    },
  };
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  standIn.secrets.clear();
  standIn.calls.clear();
});

describe("reading a key of the tenant secret", () => {
  it("reads a string key and an object key with one GetSecretValue for the whole secret", async () => {
    // Prepare
    standIn.secrets.set(
      SECRET,
      JSON.stringify({
        "info@acme.it": PASSWORD,
        "info@acme.it/google": { clientId: "id", clientSecret: "s", refreshToken: "r" },
        "sales@acme.it": "another-password",
      }),
    );
    const store = new SecretsManagerSecretStore({ client: standIn.client() });

    // Act
    const [password, google, sales] = await Promise.all([
      store.get(`${SECRET}#info@acme.it`),
      store.get(`${SECRET}#info@acme.it/google`),
      store.get(`${SECRET}#sales@acme.it`),
    ]);

    // Assess
    expect(password).toBe(PASSWORD);
    expect(JSON.parse(google)).toEqual({ clientId: "id", clientSecret: "s", refreshToken: "r" });
    expect(sales).toBe("another-password");
    expect(standIn.calls.get("GetSecretValue")).toBe(1);
  });

  it("names the secret and the missing key, and never a value", async () => {
    // Prepare
    standIn.secrets.set(SECRET, JSON.stringify({ "sales@acme.it": PASSWORD }));
    const store = new SecretsManagerSecretStore({ client: standIn.client() });

    // Act
    const error = await store.get(`${SECRET}#info@acme.it`).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`secret ${SECRET} has no key info@acme.it`);
    expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).not.toContain(
      PASSWORD,
    );
  });

  it("refuses a secret that is not a JSON object without quoting it", async () => {
    // Prepare
    standIn.secrets.set(SECRET, PASSWORD);
    const store = new SecretsManagerSecretStore({ client: standIn.client() });

    // Act
    const error = await store.get(`${SECRET}#info@acme.it`).catch((e: unknown) => e);

    // Assess
    expect((error as ConfigError).message).toBe(
      `secret ${SECRET} is not a JSON object, so it has no key info@acme.it`,
    );
    expect((error as ConfigError).hint).not.toContain(PASSWORD);
  });

  it("still reads a whole per-mailbox secret by its plain name", async () => {
    // Prepare
    standIn.secrets.set("pop2gmail/acme/info-pop3", PASSWORD);
    const store = new SecretsManagerSecretStore({ client: standIn.client() });

    // Act
    const value = await store.get("pop2gmail/acme/info-pop3");

    // Assess
    expect(value).toBe(PASSWORD);
  });
});

describe("onboarding writes into the tenant secret", () => {
  let dynalite: DynaliteStandIn;
  let leases: SessionLeases;

  beforeAll(async () => {
    dynalite = await startDynaliteStandIn();
    const tableName = uniqueName("ledger");
    await createLedgerTable(dynalite.dynamodb, tableName);
    leases = new DynamoDbLedger({ client: dynalite.dynamodb, tableName });
  });

  afterAll(async () => {
    await dynalite.stop();
  });

  afterEach(() => {
    standIn.calls.clear();
  });

  /** One onboarding container: its own Secrets Manager client, the ledger's lease items shared. */
  const container = () =>
    new SecretsManagerSecretWriter(standIn.client(), {
      lock: leaseSecretWriteLock({
        leases,
        tenant: "acme",
        // The other writer holds the lease for a few loopback round trips; wait 10 ms a turn.
        pause: () => new Promise((resolve) => setTimeout(resolve, 10)),
      }),
    });

  it("keeps both keys when two mailboxes onboard at once from two containers", async () => {
    // Prepare
    standIn.secrets.set(SECRET, JSON.stringify({ "info@acme.it": PASSWORD }));
    const [first, second] = [container(), container()];

    // Act
    await Promise.all([
      first.set(`${SECRET}#info@acme.it/google`, { refreshToken: "info-token" }),
      second.set(`${SECRET}#sales@acme.it/google`, { refreshToken: "sales-token" }),
    ]);

    // Assess
    expect(JSON.parse(standIn.secrets.get(SECRET) ?? "{}")).toEqual({
      "info@acme.it": PASSWORD,
      "info@acme.it/google": { refreshToken: "info-token" },
      "sales@acme.it/google": { refreshToken: "sales-token" },
    });
  });

  it("keeps all keys when ten mailboxes onboard at once", async () => {
    // Prepare
    standIn.secrets.set(SECRET, "{}");
    const ids = Array.from({ length: 10 }, (_, i) => `box-${i}@acme.it`);

    // Act
    await Promise.all(ids.map((id) => container().set(`${SECRET}#${id}/google`, { refreshToken: id })));

    // Assess
    expect(Object.keys(JSON.parse(standIn.secrets.get(SECRET) ?? "{}")).sort()).toEqual(
      ids.map((id) => `${id}/google`).sort(),
    );
  });

  it("gives up retryable, without writing, when the lease stays taken", async () => {
    // Prepare
    standIn.secrets.set(SECRET, "{}");
    const leaseKey = { tenant: "acme", mailboxId: `secret:${SECRET}` };
    const held = await leases.acquire(leaseKey, 1, "other", 60_000);
    onTestFinished(async () => {
      if (held !== undefined) await leases.release(leaseKey, held);
    });
    const writer = new SecretsManagerSecretWriter(standIn.client(), {
      lock: leaseSecretWriteLock({ leases, tenant: "acme", attempts: 3, pause: async () => {} }),
    });

    // Act
    const error = await writer
      .set(`${SECRET}#info@acme.it/google`, { refreshToken: "t" })
      .catch((e: unknown) => e);

    // Assess
    expect(held).toBeDefined();
    expect(error).toBeInstanceOf(TransientError);
    expect(standIn.calls.get("PutSecretValue")).toBeUndefined();
    expect(standIn.secrets.get(SECRET)).toBe("{}");
  });

  it("reports a written key as written when giving the lease back fails (the lease expires by itself)", async () => {
    // Prepare
    standIn.secrets.set(SECRET, "{}");
    const failingRelease: SessionLeases = {
      acquire: (...args) => leases.acquire(...args),
      release: async () => {
        throw new TransientError("ledger", "DeleteItem timed out");
      },
    };
    const writer = new SecretsManagerSecretWriter(standIn.client(), {
      lock: leaseSecretWriteLock({ leases: failingRelease, tenant: "acme", leaseMs: 1 }),
    });

    // Act
    await writer.set(`${SECRET}#info@acme.it/google`, { refreshToken: "t" });

    // Assess
    expect(JSON.parse(standIn.secrets.get(SECRET) ?? "{}")).toEqual({
      "info@acme.it/google": { refreshToken: "t" },
    });
  });

  it("refuses a write that would take the secret past Secrets Manager's 65,536 bytes, and keeps it as it was", async () => {
    // Prepare
    const before = JSON.stringify({ "info@acme.it": PASSWORD, padding: "x".repeat(65_400) });
    standIn.secrets.set(SECRET, before);

    // Act
    const error = await container()
      .set(`${SECRET}#sales@acme.it/google`, { refreshToken: "r".repeat(200) })
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(
      new RegExp(`^secret ${SECRET} would be 656\\d\\d bytes, over Secrets Manager's 65536-byte limit$`),
    );
    expect((error as ConfigError).message).not.toContain(PASSWORD);
    expect(standIn.calls.get("PutSecretValue")).toBeUndefined();
    expect(standIn.secrets.get(SECRET)).toBe(before);
  });

  it("writes a whole per-mailbox secret as before, without a lease", async () => {
    // Prepare
    standIn.secrets.set("pop2gmail/acme/info-google", "{}");

    // Act
    await container().set("pop2gmail/acme/info-google", { refreshToken: "t" });

    // Assess
    expect(JSON.parse(standIn.secrets.get("pop2gmail/acme/info-google") ?? "")).toEqual({
      refreshToken: "t",
    });
    expect(standIn.calls.get("GetSecretValue")).toBeUndefined();
  });
});
