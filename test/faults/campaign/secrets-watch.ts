import { Logger, type LogItem } from "@aws-lambda-powertools/logger";

/**
 * Watches everything the campaign's functions leave behind for secrets (DESIGN.md invariant 6):
 * the POP3 password (also in the base64 forms AUTH PLAIN puts on the wire), the Google client
 * secret and refresh token, and every access token the token endpoint handed out so far. Each
 * place a secret shows up is kept by name (never the secret itself), so the report can say where.
 */
export class SecretsWatch {
  readonly found: string[] = [];
  /** Texts scanned, for the report. */
  scanned = 0;
  private readonly fixed: readonly { readonly name: string; readonly value: string }[];

  constructor(
    secrets: {
      readonly user: string;
      readonly pop3Password: string;
      readonly clientSecret: string;
      readonly refreshToken: string;
    },
    private readonly accessTokens: () => readonly string[],
  ) {
    const { user, pop3Password } = secrets;
    this.fixed = [
      { name: "POP3 password", value: pop3Password },
      {
        name: "POP3 password (AUTH PLAIN)",
        value: Buffer.from(`\0${user}\0${pop3Password}`).toString("base64"),
      },
      {
        name: "POP3 password (AUTH PLAIN)",
        value: Buffer.from(`${user}\0${user}\0${pop3Password}`).toString("base64"),
      },
      { name: "Google client secret", value: secrets.clientSecret },
      { name: "Google refresh token", value: secrets.refreshToken },
    ];
  }

  /** Looks for every secret in `text`, found in `where` (a log line, an event, a ledger item). */
  scan(where: string, text: string): void {
    this.scanned++;
    for (const { name, value } of this.fixed) {
      if (text.includes(value)) this.found.push(`${name} in ${where}`);
    }
    for (const token of this.accessTokens()) {
      if (text.includes(token)) this.found.push(`an access token in ${where}`);
    }
  }

  /** A Powertools logger whose lines are scanned instead of printed (printed too when `print`). */
  logger(serviceName: string, print: boolean): Logger {
    const watch = this;
    return new (class extends Logger {
      protected override printLog(logLevel: number, log: LogItem): void {
        log.prepareForPrint();
        const line = JSON.stringify(log.getAttributes(), safeReplacer());
        watch.scan("a log line", line);
        if (print) super.printLog(logLevel, log);
      }
    })({ serviceName, logLevel: "DEBUG" });
  }
}

/** A JSON replacer for log attributes: BigInt as text, cycles cut. */
function safeReplacer(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "object" && value !== null) {
      if (seen.has(value)) return "[cycle]";
      seen.add(value);
    }
    return value;
  };
}
