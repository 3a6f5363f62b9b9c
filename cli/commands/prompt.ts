import { createInterface } from "node:readline/promises";

/** Questions on a terminal; tests script the answers. */
export interface Prompter {
  /** One question; an empty answer takes `fallback`. */
  ask(question: string, fallback?: string): Promise<string>;
  /** A secret, not echoed. */
  askHidden(question: string): Promise<string>;
  /** A line for the person at the terminal (stderr on a terminal, keeping stdout for results). */
  say(text: string): void;
}

/** The real terminal. */
export const terminalPrompter: Prompter = {
  ask: (question, fallback) => ask(question, fallback),
  askHidden: (question) => askHidden(question),
  say: (text) => {
    process.stderr.write(`${text}\n`);
  },
};

/**
 * Asks until `check` accepts the answer (it returns the reason when it does not), saying the
 * reason each time; `undefined` after `attempts` refusals (input closed or a person giving up).
 */
export async function askUntilValid(
  prompter: Prompter,
  question: string,
  check: (answer: string) => string | undefined,
  fallback?: string,
  attempts = 5,
): Promise<string | undefined> {
  for (let i = 0; i < attempts; i++) {
    const answer = await prompter.ask(question, fallback);
    const problem = check(answer);
    if (problem === undefined) return answer;
    prompter.say(`  ${problem}: try again`);
  }
  return undefined;
}

/** Asks one question on the terminal; an empty answer takes `fallback`. */
export async function ask(question: string, fallback?: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (
      await rl.question(`${question}${fallback === undefined ? "" : ` [${fallback}]`}: `)
    ).trim();
    return answer === "" ? (fallback ?? "") : answer;
  } finally {
    rl.close();
  }
}

/** Asks for a secret without echoing it (raw mode); Ctrl-C aborts. */
export function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(`${question}: `);
  return new Promise((resolve, reject) => {
    let value = "";
    stdin.setRawMode(true);
    stdin.resume();
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n") {
          done();
          process.stderr.write("\n");
          resolve(value);
          return;
        }
        if (char === "\u0003") {
          done();
          reject(new Error("cancelled"));
          return;
        }
        if (char === "\u007f") value = value.slice(0, -1);
        else value += char;
      }
    };
    const done = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on("data", onData);
  });
}
