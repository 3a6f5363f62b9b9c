import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseJsonc } from "../../shared/config/jsonc";
import { loadLocalConfig, parseLocalConfig } from "../../shared/config/local-config";
import { ConfigError } from "../../shared/core/errors";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const minimal = {
  tenant: "acme",
  mailboxes: [
    {
      id: "info@acme.it",
      pop3: { host: "pop.example", user: "info", passwordSecret: "acme/pop3" },
      gmail: { user: "info@acme.it", credentialsSecret: "acme/google" },
    },
  ],
};

describe("local config", () => {
  it("accepts the commented example in examples/local.jsonc", async () => {
    // Prepare
    const path = join(__dirname, "../../examples/local.jsonc");
    // Act
    const config = await loadLocalConfig(path);
    // Assess
    expect(config.tenant).toBe("acme");
    expect(config.local.dataDir).toMatch(/examples\/\.data\/acme$/);
    expect(config.mailboxes[0]?.pop3.tls).toBe("implicit");
  });

  it("defaults dataDir to ./.data/<tenant> beside the config file", () => {
    // Prepare
    const input = minimal;
    // Act
    const config = parseLocalConfig(input, "/srv/pop2gmail");
    // Assess
    expect(config.local).toEqual({
      dataDir: "/srv/pop2gmail/.data/acme",
      batchSize: 50,
      maxRetryWaitSeconds: 120,
    });
  });

  it("names every invalid field, the local section's too", () => {
    // Prepare
    const input = {
      ...minimal,
      local: { batchSize: 0 },
      mailboxes: [{ ...minimal.mailboxes[0], pollSeconds: 1 }],
    };
    // Act
    const attempt = () => parseLocalConfig(input, "/tmp");
    // Assess
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/local\.batchSize/);
    expect(attempt).toThrow(/mailboxes\[0\]\.pollSeconds/);
  });

  it("strips comments but keeps // and /* inside strings", () => {
    // Prepare
    const text = '{ // note\n "url": "https://x/*y*/", /* block */ "n": 1 }';
    // Act
    const parsed = parseJsonc(text, "test.jsonc");
    // Assess
    expect(parsed).toEqual({ url: "https://x/*y*/", n: 1 });
  });

  it("reports a syntax error with the file name and what to do", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "pop2gmail-config-"));
    dirs.push(dir);
    const path = join(dir, "broken.json");
    await writeFile(path, "{ tenant: acme }");
    // Act
    const attempt = loadLocalConfig(path);
    // Assess
    await expect(attempt).rejects.toMatchObject({
      message: expect.stringContaining(path),
      hint: expect.stringContaining("syntax"),
    });
  });

  it("keeps a string value that holds ', }' or ', ]' as written (no comma rewriting inside strings)", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "pop2gmail-config-"));
    dirs.push(dir);
    const path = join(dir, "label.jsonc");
    const config = structuredClone(minimal);
    const text = JSON.stringify(config, null, 2).replace(
      '"credentialsSecret": "acme/google"',
      '"credentialsSecret": "acme/google", "mailboxLabel": "a, }", "labels": ["x, ]",], // trailing commas\n',
    );
    await writeFile(path, text);
    // Act
    const loaded = await loadLocalConfig(path);
    // Assess
    expect(loaded.mailboxes[0]?.gmail.mailboxLabel).toBe("a, }");
    expect(loaded.mailboxes[0]?.gmail.labels).toEqual(["x, ]"]);
  });

  it("reports a syntax error at the file's line:column", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "pop2gmail-config-"));
    dirs.push(dir);
    const path = join(dir, "broken.jsonc");
    await writeFile(path, '{\n  // a comment\n  "tenant": "acme"\n  "mailboxes": []\n}\n');
    // Act
    const attempt = loadLocalConfig(path);
    // Assess
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(`${path}:4:3`);
  });

  it("rejects an unknown key in the local section, naming the closest valid one", () => {
    // Prepare
    const input = { ...minimal, local: { dataDri: "./data" } };
    // Act
    const attempt = () => parseLocalConfig(input, "/tmp");
    // Assess
    expect(attempt).toThrow(/local\.dataDri: unknown key "dataDri"; did you mean "dataDir"\?/);
  });

  it("rejects a mailbox key typo (deleteAftr) instead of applying the default deleteAfter", () => {
    // Prepare
    const input = { ...minimal, mailboxes: [{ ...minimal.mailboxes[0], deleteAftr: "never" }] };
    // Act
    const attempt = () => parseLocalConfig(input, "/tmp");
    // Assess
    expect(attempt).toThrow(
      /mailboxes\[0\]\.deleteAftr: unknown key "deleteAftr"; did you mean "deleteAfter"\?/,
    );
  });

  it("rejects a key given twice in one object at the second one's line:column", () => {
    // Prepare
    const text =
      '{\n  "deleteAfter": "never",\n  "n": { "deleteAfter": 1 },\n  "deleteAfter": "immediately"\n}';
    // Act
    const attempt = () => parseJsonc(text, "box.jsonc");
    // Assess
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow('box.jsonc:4:3: "deleteAfter" is given twice');
  });
});
