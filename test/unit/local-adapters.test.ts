import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileArchiveStore } from "../../shared/adapters/local/file-archive-store";
import { LocalSecretStore, secretEnvName } from "../../shared/adapters/local/local-secret-store";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import { ConfigError } from "../../shared/core/errors";
import { describeArchiveStoreContract, metadataFor, sha256 } from "../contract/archive-store-contract";
import { describeLedgerContract, newMailbox } from "../contract/ledger-contract";
import { describeSessionLeasesContract } from "../contract/session-leases-contract";

// The local adapters pass the same contract suites as the in-memory doubles and the AWS adapters.

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-local-"));
  dirs.push(dir);
  return dir;
}
const ledgers: SqliteLedger[] = [];
afterAll(async () => {
  for (const ledger of ledgers) ledger.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const sharedDir = mkdtemp(join(tmpdir(), "pop2gmail-local-shared-")).then((dir) => {
  dirs.push(dir);
  return dir;
});

describeLedgerContract("SqliteLedger", async () => {
  const ledger = new SqliteLedger({ path: join(await sharedDir, "ledger.sqlite") });
  ledgers.push(ledger);
  return ledger;
});

describeSessionLeasesContract("SqliteLedger", async (now) => {
  const ledger = new SqliteLedger({ path: join(await sharedDir, "leases.sqlite"), now });
  ledgers.push(ledger);
  return ledger;
});

describeArchiveStoreContract(
  "FileArchiveStore",
  async () => new FileArchiveStore(join(await sharedDir, "archive")),
);

describe("SqliteLedger on disk", () => {
  it("keeps entries across a reopen, and a second connection sees the first one's writes", async () => {
    // Prepare
    const path = join(await tempDir(), "ledger.sqlite");
    const mailbox = newMailbox();
    const first = new SqliteLedger({ path });
    await first.createListed([{ ...mailbox, uidl: "u1", listedSize: 10, listedAt: 1 }]);
    const second = new SqliteLedger({ path });
    // Act
    await second.transition({ ...mailbox, uidl: "u1" }, ["listed"], "archived", { archivedSize: 10 });
    const seenByFirst = await first.get({ ...mailbox, uidl: "u1" });
    first.close();
    second.close();
    const reopened = new SqliteLedger({ path });
    const afterReopen = await reopened.get({ ...mailbox, uidl: "u1" });
    reopened.close();
    // Assess
    expect(seenByFirst).toMatchObject({ state: "archived", archivedSize: 10 });
    expect(afterReopen).toEqual(seenByFirst);
  });

  it("drops leases of a dead process on request, so a restart is not blocked", async () => {
    // Prepare
    const ledger = new SqliteLedger({ path: join(await tempDir(), "ledger.sqlite") });
    const mailbox = newMailbox();
    await ledger.acquire(mailbox, 1, "killed-process", 60_000);
    // Act
    const dropped = ledger.releaseAllLeases();
    const next = await ledger.acquire(mailbox, 1, "restarted", 60_000);
    ledger.close();
    // Assess
    expect(dropped).toBe(1);
    expect(next).toEqual({ slot: 0, holder: "restarted" });
  });
});

describe("FileArchiveStore files", () => {
  it("stores the message as a plain .eml file with a metadata sidecar, and no temp file left", async () => {
    // Prepare
    const dataDir = await tempDir();
    const store = new FileArchiveStore(join(dataDir, "archive"));
    const bytes = Buffer.from("From: a@b\r\n\r\n\u00e9\0.\r\n", "latin1");
    // Act
    await store.put("acme/info%40acme.it/u1.eml", [bytes][Symbol.iterator]() as never, metadataFor("u1"));
    const file = await readFile(store.pathOf("acme/info%40acme.it/u1.eml"));
    const sidecar = JSON.parse(
      await readFile(`${store.pathOf("acme/info%40acme.it/u1.eml")}.meta.json`, "utf8"),
    );
    const leftovers = await readdir(join(dataDir, ".archive-tmp"));
    // Assess
    expect(sha256(file)).toBe(sha256(bytes));
    expect(sidecar).toEqual(metadataFor("u1"));
    expect(leftovers).toEqual([]);
  });

  it("refuses keys that would step out of the archive folder", async () => {
    // Prepare
    const store = new FileArchiveStore(join(await tempDir(), "archive"));
    // Act
    const attempt = store.put("../escape.eml", (async function* () {})(), metadataFor("x"));
    // Assess
    await expect(attempt).rejects.toThrow(/not a safe relative path/);
  });

  it("sees a file changed behind its back in verify", async () => {
    // Prepare
    const store = new FileArchiveStore(join(await tempDir(), "archive"));
    const key = "acme/box/u2.eml";
    const digest = await store.put(
      key,
      (async function* () {
        yield Buffer.from("hello\r\n");
      })(),
      metadataFor("u2"),
    );
    await writeFile(store.pathOf(key), "HELLO\r\n");
    // Act
    const verified = await store.verify(key, digest);
    // Assess
    expect(verified).toBe(false);
  });
});

describe("LocalSecretStore", () => {
  it("reads a secret from the environment first, then from the credentials file", async () => {
    // Prepare
    const file = join(await tempDir(), "credentials.json");
    await writeFile(file, JSON.stringify({ "acme/pop3": "from-file", google: { clientId: "c" } }), {
      mode: 0o600,
    });
    const store = new LocalSecretStore(file, { [secretEnvName("acme/pop3")]: "from-env" });
    const fileOnly = new LocalSecretStore(file, {});
    // Act
    const values = [
      await store.get("acme/pop3"),
      await fileOnly.get("acme/pop3"),
      await fileOnly.get("google"),
    ];
    // Assess
    expect(secretEnvName("acme/pop3")).toBe("POP2GMAIL_SECRET_ACME_POP3");
    expect(values).toEqual(["from-env", "from-file", '{"clientId":"c"}']);
  });

  it("names a missing secret and how to set it, without any value", async () => {
    // Prepare
    const store = new LocalSecretStore(join(await tempDir(), "credentials.json"), {});
    // Act
    const attempt = store.get("acme/missing");
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({
      message: expect.stringContaining("acme/missing"),
      hint: expect.stringContaining("POP2GMAIL_SECRET_ACME_MISSING"),
    });
  });

  it("refuses a credentials file other users can read, and writes its own with mode 0600", async () => {
    // Prepare
    const dir = await tempDir();
    const open = join(dir, "open.json");
    await writeFile(open, JSON.stringify({ a: "secret-value" }), { mode: 0o644 });
    const written = new LocalSecretStore(join(dir, "sub", "credentials.json"), {});
    // Act
    const refusal = await new LocalSecretStore(open, {}).get("a").catch((error: unknown) => error);
    await written.set("b", "value-b");
    const mode = (await stat(join(dir, "sub", "credentials.json"))).mode & 0o777;
    // Assess
    expect(refusal).toBeInstanceOf(ConfigError);
    expect(String((refusal as ConfigError).hint)).toContain("chmod 600");
    expect(JSON.stringify(refusal)).not.toContain("secret-value");
    expect(mode).toBe(0o600);
    expect(await written.get("b")).toBe("value-b");
  });
});
