import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { parseLocalConfig } from "../../shared/config/local-config";
import { archiveKeyFor } from "../../shared/core/archive-key";
import { awkwardMessages, generateMailbox } from "../demo/awkward-messages";
import { GmailApiStandIn } from "../demo/gmail-api-stand-in";
import { ScriptedPop3Server } from "../demo/scripted-pop3-server";
import { EXIT, formatBytes, formatMs, Progress, percentile, table } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { runOnce } from "../runtime/run-local";
import { openLocalRuntime } from "./local-context";

const TENANT = "demo";
const MAILBOX_ID = "info@demo.example";
const GMAIL_USER = "demo.user@gmail.example";

/** One check of the demo's verdict. */
interface DemoCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * `pop2gmail demo`: a POP3 server with a generated mailbox (varied messages, 8-bit, dot lines,
 * NUL bytes, one without Message-ID, one of ~5 MB) and the Gmail API stand-in, both on loopback,
 * and the local runtime between them in a temp data dir. Then it proves the result from the
 * outside: every archived file has the SHA-256 of what the server held, every message is in
 * Gmail exactly once, the POP3 box is empty. Exit 0 only when all of that holds.
 */
export async function demoCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { keep: { type: "boolean" }, json: { type: "boolean" }, messages: { type: "string" } },
  });
  const generated = Number.parseInt(values.messages ?? "42", 10);
  const mail = [...awkwardMessages({ attachmentBytes: 3_900_000 }), ...generateMailbox(generated, 2026)];
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-demo-"));
  const password = randomBytes(12).toString("hex");
  const oauth = {
    clientId: "demo-client",
    clientSecret: randomBytes(12).toString("hex"),
    refreshToken: randomBytes(24).toString("hex"),
  };
  const pop3Server = new ScriptedPop3Server({
    users: { demo: password },
    messages: mail.map((m) => m.bytes),
  });
  const gmail = new GmailApiStandIn();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const { port } = await pop3Server.start();
    const google = await gmail.start();
    gmail.registerOAuthUser({ user: GMAIL_USER, ...oauth });
    const onServer = pop3Server.snapshot();
    const config = parseLocalConfig(
      {
        tenant: TENANT,
        // The stand-in enforces no quota; Gmail's real 6,000 units/min would pace the demo to 4 imports/s.
        google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl, quotaUnitsPerMinute: 1_000_000 },
        local: { dataDir: join(dir, "data") },
        mailboxes: [
          {
            id: MAILBOX_ID,
            pop3: {
              host: "127.0.0.1",
              port,
              tls: "none",
              allowPlaintext: true,
              user: "demo",
              passwordSecret: "demo/pop3",
            },
            gmail: { user: GMAIL_USER, credentialsSecret: "demo/google" },
          },
        ],
      },
      dir,
      "demo config",
    );
    const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials, {});
    await secrets.set("demo/pop3", password);
    await secrets.set("demo/google", oauth);
    const totalBytes = mail.reduce((sum, m) => sum + m.bytes.length, 0);
    log(
      `pop2gmail demo: POP3 server on 127.0.0.1:${port} holds ${mail.length} messages (${formatBytes(totalBytes)}); Gmail API stand-in on ${google.baseUrl}`,
    );
    log(`data dir: ${config.local.dataDir}`);

    const runtime = await openLocalRuntime(config, { secrets });
    const progress = new Progress("importing", mail.length);
    const delays: number[] = [];
    const imported = new Map<string, string>();
    runtime.telemetry.onEvent((event) => {
      if (event.type !== "imported") return;
      delays.push(event.pipelineDelayMs);
      imported.set(event.uidl, event.gmailId);
      progress.tick(event.uidl.slice(0, 12));
    });
    const started = Date.now();
    const summary = await runOnce(runtime).finally(() => runtime.close());
    progress.finish();
    const elapsedMs = Date.now() - started;

    // Proof from the outside: the files on disk, the stand-in's store, the server's maildrop.
    const archive = localPaths(config.local.dataDir).archive;
    const rows: string[][] = [];
    let exact = 0;
    let onceInGmail = 0;
    const stored = gmail.messages(GMAIL_USER);
    for (const [index, held] of onServer.messages.entries()) {
      const bytes = servedForm(held);
      const uidl = onServer.uidls[index] ?? "";
      const path = join(archive, archiveKeyFor({ tenant: TENANT, mailboxId: MAILBOX_ID, uidl }));
      const file = await readFile(path).catch(() => undefined);
      const sameBytes = file !== undefined && sha256(file) === sha256(bytes);
      if (sameBytes) exact++;
      const copies = stored.filter((m) => m.raw.equals(bytes)).length;
      if (copies === 1) onceInGmail++;
      rows.push([
        String(index + 1),
        mail[index]?.name ?? "",
        formatBytes(bytes.length),
        relative(dir, path),
        imported.get(uidl) ?? "-",
        sameBytes ? "yes" : "NO",
        String(copies),
      ]);
    }
    const left = pop3Server.remainingMessages().length;
    const checks: DemoCheck[] = [
      {
        name: "archived byte-exact (SHA-256 vs the POP3 server's copy)",
        ok: exact === mail.length,
        detail: `${exact}/${mail.length}`,
      },
      {
        name: "in Gmail exactly once",
        ok: onceInGmail === mail.length && stored.length === mail.length,
        detail: `${onceInGmail}/${mail.length} (Gmail holds ${stored.length})`,
      },
      { name: "POP3 mailbox empty", ok: left === 0, detail: `${left} left` },
      {
        name: "run --once finished (nothing in flight)",
        ok: summary.ok,
        detail: `${summary.inFlight} in flight`,
      },
    ];
    const ok = checks.every((c) => c.ok);
    const p50 = percentile(delays, 50);
    const p95 = percentile(delays, 95);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ ok, messages: mail.length, bytes: totalBytes, elapsedMs, pipelineDelayMs: { p50, p95 }, archive, checks, summary }, null, 2)}\n`,
      );
    } else {
      const shown =
        rows.length > 12
          ? [...rows.slice(0, 12), ["…", `${rows.length - 12} more`, "", "", "", "", ""]]
          : rows;
      const out = [
        "",
        table(["#", "message", "bytes", "archive file", "gmail id", "exact", "in gmail"], shown),
        "",
        table(
          ["what", "value"],
          [
            ["messages", String(mail.length)],
            ["bytes", `${formatBytes(totalBytes)} (${totalBytes})`],
            ["archive folder", values.keep ? archive : `${archive} (removed on exit; --keep keeps it)`],
            ["PipelineDelay p50 / p95", `${formatMs(p50)} / ${formatMs(p95)}`],
            ["wall time", formatMs(elapsedMs)],
            ...checks.map((c) => [`${c.ok ? "ok  " : "FAIL"} ${c.name}`, c.detail]),
          ],
        ),
        "",
        ok
          ? "demo passed: every message archived byte-exact, in Gmail once, and deleted from POP3."
          : "demo FAILED: see the checks above and the event log.",
      ];
      process.stdout.write(`${out.join("\n")}\n`);
    }
    if (values.keep) log(`kept ${dir} (event log: ${localPaths(config.local.dataDir).events})`);
    return ok ? EXIT.ok : EXIT.failure;
  } finally {
    await pop3Server.stop();
    await gmail.stop();
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The bytes RETR serves for a stored message: RFC 1939 §3 puts the terminating "." on a line of
 * its own, so a message without a final CRLF is served (by Dovecot too) with one added.
 */
function servedForm(message: Buffer): Buffer {
  const endsWithCrlf = message.length >= 2 && message.subarray(-2).equals(Buffer.from("\r\n"));
  return message.length === 0 || endsWithCrlf ? message : Buffer.concat([message, Buffer.from("\r\n")]);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
