import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { initCommand } from "../../../cli/commands/init";
import type { Prompter } from "../../../cli/commands/prompt";

/** A terminal that answers from a script and records what it was told. */
class ScriptedPrompter implements Prompter {
  readonly transcript: string[] = [];
  constructor(private readonly answers: string[]) {}
  async ask(question: string, fallback?: string): Promise<string> {
    const answer = this.answers.shift();
    if (answer === undefined) throw new Error(`no scripted answer for: ${question}`);
    this.transcript.push(`? ${question} -> ${answer}`);
    return answer === "" ? (fallback ?? "") : answer;
  }
  async askHidden(question: string): Promise<string> {
    return this.ask(question);
  }
  say(text: string): void {
    this.transcript.push(text);
  }
}

describe("pop2gmail init on a terminal", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-init-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("asks again, with the reason, for an empty or invalid Gmail address and keeps every other answer", async () => {
    // Prepare
    const output = join(dir, "acme.local.json");
    const prompter = new ScriptedPrompter([
      "info@acme.it", // mailbox id
      "pop.acme.it", // POP3 host
      "", // TLS: implicit
      "", // port: 995
      "", // user: the mailbox id
      "", // Gmail address: empty
      "mario.rossi", // Gmail address: not an address
      "mario.rossi@gmail.com", // Gmail address
      "", // delete after: immediately
      "", // POP3 password: keep
      "n", // run check now?
      "", // invite: skip
    ]);
    // Act
    const code = await initCommand(["acme", "--output", output, "--data-dir", join(dir, "data")], prompter);
    // Assess
    expect(code).toBe(0);
    const written = JSON.parse(await readFile(output, "utf8"));
    expect(written.mailboxes[0]).toMatchObject({
      id: "info@acme.it",
      pop3: { host: "pop.acme.it", port: 995, tls: "implicit", user: "info@acme.it" },
      gmail: { user: "mario.rossi@gmail.com" },
    });
    const reasons = prompter.transcript.filter((line) => line.includes("Gmail address messages go to"));
    expect(reasons.length).toBe(2);
    expect(prompter.transcript.join("\n")).toMatch(/try again/);
  });

  it("asks again for a port that is not a number and a TLS mode it does not know", async () => {
    // Prepare
    const output = join(dir, "acme.local.json");
    const prompter = new ScriptedPrompter([
      "info@acme.it",
      "pop.acme.it",
      "ssl", // not a TLS mode
      "starttls",
      "one-ten", // not a port
      "110",
      "",
      "owner@acme.it",
      "forever", // not a deleteAfter
      "30d",
      "",
      "n",
      "",
    ]);
    // Act
    const code = await initCommand(["acme", "--output", output, "--data-dir", join(dir, "data")], prompter);
    // Assess
    expect(code).toBe(0);
    const written = JSON.parse(await readFile(output, "utf8"));
    expect(written.mailboxes[0]).toMatchObject({ pop3: { tls: "starttls", port: 110 }, deleteAfter: "30d" });
    expect(prompter.transcript.filter((line) => line.includes("try again")).length).toBe(3);
  });

  it("makes the invite link at the end when given the OAuth web client", async () => {
    // Prepare
    const output = join(dir, "acme.local.json");
    const clientFile = join(dir, "web_client.json");
    await writeFile(
      clientFile,
      JSON.stringify({ web: { client_id: "web-client", client_secret: "web-secret" } }),
    );
    const prompter = new ScriptedPrompter([
      "info@acme.it",
      "pop.acme.it",
      "",
      "",
      "",
      "owner@gmail.com",
      "",
      "",
      "n",
      clientFile,
    ]);
    const printed: string[] = [];
    const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      printed.push(String(chunk));
      return true;
    });
    // Act
    let code: number;
    try {
      code = await initCommand(["acme", "--output", output, "--data-dir", join(dir, "data")], prompter);
    } finally {
      write.mockRestore();
    }
    // Assess
    expect(code).toBe(0);
    expect(printed.join("")).toMatch(/http:\/\/127\.0\.0\.1:8470\/o\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
    const credentials = JSON.parse(await readFile(join(dir, "data", "credentials.json"), "utf8"));
    expect(credentials["acme/onboarding"]).toMatchObject({
      clientId: "web-client",
      clientSecret: "web-secret",
    });
    expect(printed.join("")).not.toContain(credentials["acme/onboarding"].linkKey);
  });

  it("ends by offering check and, for consumer Gmail, the invite command", async () => {
    // Prepare
    const output = join(dir, "acme.local.json");
    const prompter = new ScriptedPrompter([
      "info@acme.it",
      "pop.acme.it",
      "",
      "",
      "",
      "owner@gmail.com",
      "",
      "",
      "n",
      "",
    ]);
    // Act
    const code = await initCommand(["acme", "--output", output, "--data-dir", join(dir, "data")], prompter);
    // Assess
    expect(code).toBe(0);
    const text = prompter.transcript.join("\n");
    expect(text).toMatch(/Run pop2gmail check now/);
    expect(text).toMatch(/pop2gmail invite acme --mailbox info@acme\.it/);
  });
});
