/**
 * Bundled by test/infra/copy-message-bundle.test.ts the way the stack bundles copy-message, and
 * run by plain node: imports one message through GmailMailSink (label look-up and creation, the
 * multipart import, both through the googleapis client) into the Gmail API stand-in whose URLs
 * it gets as arguments, and prints the Gmail id.
 */
import { GmailMailSink } from "../../../shared/adapters/gmail/gmail-mail-sink";
import { parseTenantConfig } from "../../../shared/config/parse-tenant-config";
import { MapSecretStore } from "../../fakes/gmail-sink-fixture";

const [apiBaseUrl, tokenUrl, message] = process.argv.slice(2);
if (!apiBaseUrl || !tokenUrl || !message)
  throw new Error("usage: gmail-sink-child <apiBaseUrl> <tokenUrl> <message>");
const secrets = new MapSecretStore();
secrets.set("google-info", JSON.stringify({ clientId: "c", clientSecret: "s", refreshToken: "r" }));
// Through the tenant schema, so every Google setting has the default the functions get.
const config = parseTenantConfig({
  tenant: "acme",
  google: { apiBaseUrl, tokenUrl },
  mailboxes: [
    {
      id: "info",
      pop3: { host: "pop.example.it", user: "info", passwordSecret: "pop3-password" },
      gmail: { user: "info@acme.it", credentialsSecret: "google-info", mailboxLabel: "POP/info" },
    },
  ],
});
const [mailbox] = config.mailboxes;
if (mailbox === undefined) throw new Error("the config has no mailbox");
const sink = new GmailMailSink({ secrets, google: config.google });
const bytes = Buffer.from(message, "utf8");
const result = await sink.import({
  mailbox,
  uidl: "bundle-1",
  size: bytes.length,
  open: async () =>
    (async function* () {
      yield bytes;
    })(),
});
process.stdout.write(JSON.stringify(result));
