import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { secretNames } from "../../../infra/secret-arns";
import { assertDeployableSecretNames } from "../../../infra/tenant-app";
import { LocalSecretStore, secretEnvName } from "../../../shared/adapters/local/local-secret-store";
import { tenantConfigFromEnv } from "../../../shared/config/env";
import { parseTenantConfig } from "../../../shared/config/parse-tenant-config";
import { describeSecretReference, parseSecretReference } from "../../../shared/config/secret-reference";
import { deployedSecretNameProblem } from "../../../shared/config/tenant-config";
import { ConfigError } from "../../../shared/core/errors";

const SECRET = "pop2gmail/acme/credentials";
const PASSWORD = "pop3-password-do-not-log";

function config(passwordSecret: string, credentialsSecret = `${SECRET}#info@acme.it/google`) {
  return {
    tenant: "acme",
    mailboxes: [
      {
        id: "info@acme.it",
        pop3: { host: "pop.acme.it", user: "info@acme.it", passwordSecret },
        gmail: { user: "info.acme@gmail.example", credentialsSecret },
      },
    ],
  };
}

describe("secret references in the tenant config", () => {
  it("splits name#key at the first '#'", () => {
    // Act
    const parts = [SECRET, `${SECRET}#info@acme.it`, `${SECRET}#a#b`].map(parseSecretReference);

    // Assess
    expect(parts).toEqual([
      { secret: SECRET, key: undefined },
      { secret: SECRET, key: "info@acme.it" },
      { secret: SECRET, key: "a#b" },
    ]);
  });

  it("describes a reference as a person reads it (init's closing line)", () => {
    // Act
    const described = [SECRET, `${SECRET}#info@acme.it`].map(describeSecretReference);

    // Assess
    expect(described).toEqual([`"${SECRET}"`, `key "info@acme.it" of "${SECRET}"`]);
  });

  it("accepts a key of the tenant secret and refuses an empty name or key", () => {
    // Act
    const accepted = parseTenantConfig(config(`${SECRET}#info@acme.it`));
    const errors = ["#info@acme.it", `${SECRET}#`].map((reference) =>
      (() => {
        try {
          parseTenantConfig(config(reference));
          return "accepted";
        } catch (error) {
          return (error as ConfigError).message;
        }
      })(),
    );

    // Assess
    expect(accepted.mailboxes[0]?.pop3.passwordSecret).toBe(`${SECRET}#info@acme.it`);
    expect(errors[0]).toContain("has no secret name before '#'");
    expect(errors[1]).toContain("has no key after '#'");
  });

  it("applies the tenant-prefix rule to the secret, not the key", () => {
    // Act
    const problems = [
      `${SECRET}#info@acme.it`,
      "pop2gmail/other/credentials#info@acme.it",
      "pop2gmail/acme/#info@acme.it",
    ].map((reference) => deployedSecretNameProblem("acme", reference));

    // Assess
    expect(problems[0]).toBeUndefined();
    expect(problems[1]).toContain(
      'secret name "pop2gmail/other/credentials" must start with "pop2gmail/acme/"',
    );
    expect(problems[2]).toContain("must start with");
  });

  it("checks the onboarding secret against the tenant prefix like every other secret", () => {
    // Prepare
    const own = parseTenantConfig({
      ...config(`${SECRET}#info@acme.it`),
      onboardingSecret: `${SECRET}#onboarding`,
    });
    const foreign = parseTenantConfig({
      ...config(`${SECRET}#info@acme.it`),
      onboardingSecret: "pop2gmail/other/credentials#onboarding",
    });

    // Act
    const errors = [own, foreign].map((tenant) => {
      try {
        assertDeployableSecretNames(tenant);
        return "deployable";
      } catch (error) {
        return (error as ConfigError).message;
      }
    });

    // Assess
    expect(errors[0]).toBe("deployable");
    expect(errors[1]).toContain(
      'tenant acme: onboardingSecret: secret name "pop2gmail/other/credentials" must start with',
    );
  });

  it("names each secret once for IAM, however many keys the mailboxes use", () => {
    // Prepare
    const tenant = parseTenantConfig({
      ...config(`${SECRET}#info@acme.it`),
      mailboxes: ["info", "sales", "admin"].map((name) => ({
        id: `${name}@acme.it`,
        pop3: { host: "pop.acme.it", user: `${name}@acme.it`, passwordSecret: `${SECRET}#${name}@acme.it` },
        gmail: { user: `${name}.acme@gmail.example`, credentialsSecret: `${SECRET}#${name}@acme.it/google` },
      })),
    });

    // Act
    const names = secretNames(tenant);

    // Assess
    expect(names).toEqual({ pop3: [SECRET], google: [SECRET], all: [SECRET] });
  });
});

describe("LocalSecretStore with name#key", () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-secret-ref-"));
    file = join(dir, "credentials.json");
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a nested key of credentials.json, a string and an object", async () => {
    // Prepare
    await writeFile(
      file,
      JSON.stringify({
        [SECRET]: { "info@acme.it": PASSWORD, "info@acme.it/google": { refreshToken: "r" } },
      }),
      { mode: 0o600 },
    );
    const store = new LocalSecretStore(file, {});

    // Act
    const password = await store.get(`${SECRET}#info@acme.it`);
    const google = await store.get(`${SECRET}#info@acme.it/google`);

    // Assess
    expect(password).toBe(PASSWORD);
    expect(JSON.parse(google)).toEqual({ refreshToken: "r" });
  });

  it("names the secret and the missing key, never a value", async () => {
    // Prepare
    await writeFile(file, JSON.stringify({ [SECRET]: { "sales@acme.it": PASSWORD } }), { mode: 0o600 });
    const store = new LocalSecretStore(file, {});

    // Act
    const error = await store.get(`${SECRET}#info@acme.it`).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`secret ${SECRET} has no key info@acme.it`);
    expect(`${(error as ConfigError).message} ${(error as ConfigError).hint}`).not.toContain(PASSWORD);
  });

  it("takes the reference's or the secret's environment variable first", async () => {
    // Prepare
    const store = new LocalSecretStore(file, {
      [secretEnvName(`${SECRET}#info@acme.it`)]: "from-reference-variable",
      [secretEnvName(SECRET)]: JSON.stringify({ "sales@acme.it": "from-secret-variable" }),
    });

    // Act
    const values = [await store.get(`${SECRET}#info@acme.it`), await store.get(`${SECRET}#sales@acme.it`)];

    // Assess
    expect(values).toEqual(["from-reference-variable", "from-secret-variable"]);
  });

  it("keeps every key when two mailboxes store their credentials at once", async () => {
    // Prepare
    await writeFile(file, JSON.stringify({ [SECRET]: { "info@acme.it": PASSWORD } }), { mode: 0o600 });
    const store = new LocalSecretStore(file, {});

    // Act
    await Promise.all([
      store.set(`${SECRET}#info@acme.it/google`, { refreshToken: "info" }),
      store.set(`${SECRET}#sales@acme.it/google`, { refreshToken: "sales" }),
      store.set("pop2gmail/acme/other", "whole"),
    ]);

    // Assess
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({
      [SECRET]: {
        "info@acme.it": PASSWORD,
        "info@acme.it/google": { refreshToken: "info" },
        "sales@acme.it/google": { refreshToken: "sales" },
      },
      "pop2gmail/acme/other": "whole",
    });
  });
});

describe("the tenant config on Lambda", () => {
  it("is read from the bundled file TENANT_CONFIG_FILE names, relative to LAMBDA_TASK_ROOT", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "pop2gmail-task-root-"));
    await writeFile(join(dir, "tenant-config.json"), JSON.stringify(config(`${SECRET}#info@acme.it`)));

    // Act
    const loaded = tenantConfigFromEnv({ TENANT_CONFIG_FILE: "tenant-config.json", LAMBDA_TASK_ROOT: dir });

    // Assess
    expect(loaded.tenant).toBe("acme");
    expect(loaded.mailboxes[0]?.pop3.passwordSecret).toBe(`${SECRET}#info@acme.it`);
    await rm(dir, { recursive: true, force: true });
  });

  it("prefers TENANT_CONFIG, the tests' and local harnesses' way to inject a config", () => {
    // Act
    const loaded = tenantConfigFromEnv({
      TENANT_CONFIG: JSON.stringify(config(`${SECRET}#info@acme.it`)),
      TENANT_CONFIG_FILE: "/nonexistent/tenant-config.json",
    });

    // Assess
    expect(loaded.tenant).toBe("acme");
  });

  it("names both variables when neither is set, and the file when it is missing", () => {
    // Act
    const errors = [{}, { TENANT_CONFIG_FILE: "missing.json", LAMBDA_TASK_ROOT: "/nonexistent" }].map(
      (env) => {
        try {
          tenantConfigFromEnv(env);
          return "loaded";
        } catch (error) {
          return (error as ConfigError).message;
        }
      },
    );

    // Assess
    expect(errors).toEqual([
      "neither TENANT_CONFIG nor TENANT_CONFIG_FILE is set",
      "the tenant config file /nonexistent/missing.json cannot be read",
    ]);
  });
});
