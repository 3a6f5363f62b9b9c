import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../../cli/command-line";
import { HELP, VERB_HELP } from "../../../cli/help";

/** Every verb with a help text (init prints its own), plus sub-verbs and `--aws` forms. */
const VERBS: readonly (readonly string[])[] = [
  ...Object.keys(VERB_HELP).map((verb) => [verb]),
  ["init"],
  ["auth", "google"],
  ["quarantine", "list"],
  ["status", "--aws"],
  ["fleet", "status"],
  ["fleet", "deploy"],
];

/** The verbs `pop2gmail help` lists: each line that starts with two spaces and a verb. */
function listedVerbs(): string[] {
  const lines = [...HELP.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1] ?? "");
  // "with --region R, ..." and "help [verb]" are not commands with flags of their own.
  return [...new Set(lines)].filter((word) => word !== "with" && word !== "help");
}

/** Runs `pop2gmail <argv>` in this process and returns its exit code and what it printed. */
async function pop2gmail(argv: readonly string[]) {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

afterEach(() => {
  vi.restoreAllMocks();
});

// Issue 13 item 4: `pop2gmail run --help` exited 2 with "Unknown option '--help'" (every verb but init).
describe("pop2gmail <verb> --help", () => {
  for (const verb of VERBS) {
    for (const flag of ["--help", "-h"]) {
      it(`pop2gmail ${verb.join(" ")} ${flag} prints the verb's usage and exits 0 without doing anything`, async () => {
        // Prepare
        const argv = [...verb, flag];
        // Act
        const result = await pop2gmail(argv);
        // Assess
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`^Usage: pop2gmail ${verb[0]}\\b`));
        expect(result.stderr).toBe("");
      });
    }
  }

  it("every verb pop2gmail help lists has its own help", () => {
    // Act
    const listed = listedVerbs();
    // Assess
    expect(listed).toEqual(
      expect.arrayContaining(["demo", "run", "init", "check", "status", "redrive", "auth"]),
    );
    for (const verb of listed) expect(verb === "init" || VERB_HELP[verb] !== undefined, verb).toBe(true);
  });

  it("pop2gmail help <verb> prints the same text as <verb> --help", async () => {
    // Prepare
    const argv = ["help", "run"];
    // Act
    const viaHelp = await pop2gmail(argv);
    const viaFlag = await pop2gmail(["run", "--help"]);
    // Assess
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
  });

  it("--help after -- is an argument, not a request for help", async () => {
    // Prepare
    const argv = ["run", "--", "--help"];
    // Act
    const result = await pop2gmail(argv);
    // Assess
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  for (const argv of [["help"], ["--help"], ["-h"]]) {
    it(`pop2gmail ${argv.join(" ")} lists every verb and exits 0`, async () => {
      // Act
      const result = await pop2gmail(argv);
      // Assess
      expect(result.code).toBe(0);
      for (const verb of [
        "demo",
        "run",
        "init",
        "check",
        "status",
        "replay",
        "quarantine",
        "redrive",
        "auth",
      ]) {
        expect(result.stdout).toMatch(new RegExp(`^  ${verb} `, "m"));
      }
    });
  }

  it("pop2gmail help <unknown verb> is a usage error", async () => {
    // Act
    const result = await pop2gmail(["help", "frobnicate"]);
    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown verb "frobnicate"');
  });
});
