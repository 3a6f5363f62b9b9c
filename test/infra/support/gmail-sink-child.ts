/**
 * Bundled by test/infra/copy-message-bundle.test.ts the way the stack bundles copy-message, and
 * run by plain node: imports one message through GmailMailSink (label look-up and creation, the
 * multipart import, both through the googleapis client) into the Gmail API stand-in whose URLs
 * it gets as arguments, and prints the Gmail id.
 */
import { GmailMailSink } from "../../../shared/adapters/gmail/gmail-mail-sink";
import { gmailMailbox, MapSecretStore } from "../../fakes/gmail-sink-fixture";

const [apiBaseUrl, tokenUrl, message] = process.argv.slice(2);
if (!apiBaseUrl || !tokenUrl || !message)
  throw new Error("usage: gmail-sink-child <apiBaseUrl> <tokenUrl> <message>");
const secrets = new MapSecretStore();
secrets.set("google-info", JSON.stringify({ clientId: "c", clientSecret: "s", refreshToken: "r" }));
const sink = new GmailMailSink({
  secrets,
  google: { apiBaseUrl, tokenUrl, quotaUnitsPerMinute: 6000, maxConcurrentImports: 4 },
});
const bytes = Buffer.from(message, "utf8");
const result = await sink.import({
  mailbox: gmailMailbox("info", "info@acme.it", { mailboxLabel: "POP/info" }),
  uidl: "bundle-1",
  size: bytes.length,
  open: async () =>
    (async function* () {
      yield bytes;
    })(),
});
process.stdout.write(JSON.stringify(result));
