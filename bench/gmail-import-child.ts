/**
 * The measured side of bench/gmail-import-memory.ts, in a process of its own: imports one small
 * message (warm-up), then one 30 MB message generated as a stream, and prints baseline RSS, peak
 * RSS and time as JSON. Bundled by the parent with esbuild and run by plain node, as on Lambda, so
 * the process holds only the sink (not the stand-in, esbuild or a TypeScript loader).
 */
import { GmailMailSink } from "../shared/adapters/gmail/gmail-mail-sink";
import { gmailMailbox, MapSecretStore } from "../test/fakes/gmail-sink-fixture";
import { filler, smallTestMessage } from "../test/fakes/gmail-test-mail";
import { peakRssBytes } from "./peak-rss";

const SIZE = 30 * 1024 * 1024;
const MB = 1024 * 1024;
// RSS once the bundle is loaded (imports are evaluated before this line), before any request.
const loaded = process.memoryUsage().rss;

async function* generatedMessage(messageId: string, size: number): AsyncGenerator<Uint8Array> {
  const head = smallTestMessage(messageId).subarray(0, size);
  yield head;
  const piece = filler(64 * 1024, 5);
  for (let sent = head.length; sent < size; sent += piece.length) {
    yield piece.subarray(0, Math.min(piece.length, size - sent));
  }
}

async function child(baseUrl: string, tokenUrl: string, mode: string, tag: string): Promise<void> {
  const secrets = new MapSecretStore();
  secrets.set("google-info", JSON.stringify({ clientId: "c", clientSecret: "s", refreshToken: "r" }));
  const sink = new GmailMailSink({
    secrets,
    google: { apiBaseUrl: baseUrl, tokenUrl, quotaUnitsPerMinute: 6000, maxConcurrentImports: 4 },
    ...(mode === "multipart" ? { resumableThresholdBytes: 1024 * MB } : {}),
    resumableChunkBytes: Number(process.env.CHUNK_MB ?? 8) * MB,
  });
  const mailbox = gmailMailbox("info", "info@acme.it");
  // Warm up with a small message: lazily loaded modules (node-fetch), the token and the label
  // are part of the process, not of the cost of a large message.
  const small = smallTestMessage("warm-up@acme.it");
  await sink.import({
    mailbox,
    uidl: "warm-up",
    size: small.length,
    open: async () => generatedMessage(`warm-up-${tag}@acme.it`, small.length),
  });
  const baseline = process.memoryUsage().rss;
  const started = performance.now();
  await sink.import({
    mailbox,
    uidl: "bench",
    size: SIZE,
    open: async () => generatedMessage(`bench-${tag}@acme.it`, SIZE),
  });
  const ms = performance.now() - started;
  process.stdout.write(JSON.stringify({ loaded, baseline, peak: peakRssBytes(), ms }));
}

const [baseUrl, tokenUrl, mode, tag] = process.argv.slice(2);
if (!baseUrl || !tokenUrl || !mode)
  throw new Error("usage: gmail-import-child <baseUrl> <tokenUrl> <mode> [tag]");
await child(baseUrl, tokenUrl, mode, tag ?? mode);
