import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pop3Client } from "../../shared/adapters/pop3/pop3-client";
import { parseJsonc } from "../../shared/config/jsonc";
import { parseTenantConfig } from "../../shared/config/parse-tenant-config";
import {
  gmailSchema,
  mailboxSchema,
  pop3Schema,
  tenantConfigSchema,
} from "../../shared/config/tenant-config";
import { Pop2GmailError } from "../../shared/core/errors";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { seededRandom } from "../fakes/seeded-random";
import { runs, scaledTimeout } from "./support/faults-scale";

/** A tenant config the schema accepts, to which each run adds one key it does not know. */
function validConfig(): Record<string, unknown> {
  return {
    tenant: "acme",
    google: {},
    mailboxes: [
      {
        id: "info@acme.it",
        pop3: { host: "pop.example.net", user: "info@acme.it", passwordSecret: "pop2gmail/acme/pop3/info" },
        gmail: { user: "info.acme@gmail.com", credentialsSecret: "pop2gmail/acme/google/info" },
        deleteAfter: "never",
      },
    ],
  };
}

/** The keys an object schema knows, looking through wrappers such as `.default({})`. */
function keysOf(schema: unknown): string[] {
  let current = schema as {
    shape?: object;
    unwrap?: () => unknown;
    _zod?: { def?: { innerType?: unknown } };
  };
  for (let depth = 0; depth < 5 && current.shape === undefined; depth++) {
    const inner = current.unwrap?.() ?? current._zod?.def?.innerType;
    if (inner === undefined) break;
    current = inner as typeof current;
  }
  return Object.keys(current.shape ?? {});
}

/** Where an unknown key can go, with the keys that place knows. */
const PLACES = [
  { name: "tenant", known: Object.keys(tenantConfigSchema.shape), at: (c: Config) => c },
  {
    name: "google",
    known: keysOf(tenantConfigSchema.shape.google),
    at: (c: Config) => c.google as Config,
  },
  { name: "mailbox", known: Object.keys(mailboxSchema.shape), at: (c: Config) => mailboxOf(c) },
  { name: "pop3", known: Object.keys(pop3Schema.shape), at: (c: Config) => mailboxOf(c).pop3 as Config },
  { name: "gmail", known: Object.keys(gmailSchema.shape), at: (c: Config) => mailboxOf(c).gmail as Config },
] as const;
type Config = Record<string, unknown>;
const mailboxOf = (c: Config) => (c.mailboxes as Config[])[0] as Config;

/**
 * A JSONC text of `value` as a person edits one: random whitespace, line and block comments
 * between tokens, and trailing commas, chosen by `random`. Strings go through JSON.stringify, so
 * their contents (`"a, }"`, `"// no comment"`) must come back as they were.
 */
function toJsonc(value: unknown, random: () => number): string {
  const gap = () => {
    const roll = random();
    if (roll < 0.15) return " /* c, } */ ";
    if (roll < 0.25) return " // note, ]\n";
    return roll < 0.5 ? "\n  " : "";
  };
  const trailing = () => (random() < 0.5 ? `,${gap()}` : "");
  if (Array.isArray(value)) {
    if (value.length === 0) return `[${gap()}]`;
    return `[${gap()}${value.map((v) => `${toJsonc(v, random)}${gap()}`).join(`,${gap()}`)}${trailing()}]`;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return `{${gap()}}`;
    const members = entries.map(
      ([k, v]) => `${JSON.stringify(k)}${gap()}:${gap()}${toJsonc(v, random)}${gap()}`,
    );
    return `{${gap()}${members.join(`,${gap()}`)}${trailing()}}`;
  }
  return JSON.stringify(value);
}

/** What a latin1 server makes of the UTF-8 bytes of `text` (the scripted server reads lines as latin1). */
const asUtf8OnTheWire = (text: string) => Buffer.from(text, "utf8").toString("latin1");

/**
 * Issue 10, "widen the hostile tests": the input classes of issue 10 tried at random. Item 4: a key
 * no schema knows, anywhere in a tenant config, is an error that names it (never a silent default
 * such as `deleteAfter: immediately`), and JSONC with comments and trailing commas parses to exactly
 * the JSON value, string contents untouched. Item 8: a POP3 password with CR, LF or NUL never reaches
 * the wire (no injected command), and any other password, non-ASCII included, is sent once, as UTF-8.
 */
describe("hostile input: configs and credentials", () => {
  it("rejects an unknown key at any level of a tenant config, naming it", () => {
    // Prepare
    expect(() => parseTenantConfig(validConfig())).not.toThrow();
    fc.assert(
      fc.property(
        fc.constantFrom(...PLACES),
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,15}$/),
        fc.jsonValue({ maxDepth: 2 }),
        (place, key, value) => {
          fc.pre(!place.known.includes(key) && key !== "__proto__");
          const config = validConfig();
          place.at(config)[key] = value;

          // Act
          let error: unknown;
          try {
            parseTenantConfig(config, "tenant.jsonc");
          } catch (thrown) {
            error = thrown;
          }

          // Assess
          expect(error, `${place.name}.${key}`).toBeInstanceOf(Pop2GmailError);
          expect((error as Pop2GmailError).code).toBe("CONFIG_INVALID");
          expect((error as Error).message).toContain(`unknown key "${key}"`);
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it("parses JSONC with comments and trailing commas to exactly the JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.integer(), (value, seed) => {
        const json = JSON.stringify(value);
        fc.pre(!json.includes('"__proto__"'));
        // Prepare
        const text = toJsonc(value, seededRandom(seed));

        // Act
        const parsed = parseJsonc(text, "tenant.jsonc");

        // Assess
        expect(JSON.stringify(parsed), text).toBe(json);
      }),
      { numRuns: runs(300) },
    );
  });

  it(
    "never puts a password with CR, LF or NUL on the wire, and sends any other once, as UTF-8",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ unit: "grapheme", minLength: 1, maxLength: 16 }),
          fc.option(fc.constantFrom("\r", "\n", "\0", "\r\nDELE 1", "\nQUIT"), { nil: undefined }),
          fc.nat(),
          async (base, bad, at) => {
            // Prepare: a server that knows the password as its UTF-8 bytes read as latin1, and
            // records every command it gets.
            const cut = at % (base.length + 1);
            const password = bad === undefined ? base : `${base.slice(0, cut)}${bad}${base.slice(cut)}`;
            fc.pre(!password.startsWith(" ") && !password.endsWith(" "));
            const commands: string[] = [];
            const server = new ScriptedPop3Server({
              users: { alice: asUtf8OnTheWire(password) },
              messages: [Buffer.from("Subject: keep me\r\n\r\nbody\r\n")],
              saslPlain: false,
              reply: ({ command }) => {
                commands.push(command);
                return undefined;
              },
            });
            const { port } = await server.start();
            let outcome: unknown = "logged in";
            try {
              // Act
              const client = await Pop3Client.connect({
                host: "127.0.0.1",
                port,
                tls: "none",
                allowPlaintext: true,
                commandTimeoutMs: 10_000,
              });
              try {
                await client.login("alice", password, "user");
              } catch (error) {
                outcome = error;
              } finally {
                client.destroy();
              }
            } finally {
              await server.stop();
            }

            // Assess
            const sent = commands.filter((c) => c !== "CAPA");
            if (/[\r\n\0]/.test(password)) {
              expect((outcome as Pop2GmailError).code, JSON.stringify(password)).toBe("CONFIG_INVALID");
              expect(sent, JSON.stringify(password)).toEqual([]);
            } else {
              expect(outcome, JSON.stringify(password)).toBe("logged in");
              expect(sent, JSON.stringify(password)).toEqual(["USER", "PASS"]);
            }
            expect(server.remainingMessages()).toHaveLength(1);
          },
        ),
        { numRuns: runs(60) },
      );
    },
    scaledTimeout(60_000),
  );
});
