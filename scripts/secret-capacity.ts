// `npx tsx scripts/secret-capacity.ts`: how many mailboxes one tenant secret holds within Secrets
// Manager's 65,536-byte value (SECRET_VALUE_MAX_BYTES), with value lengths as Google issues them
// (client id 72 characters, client secret 35, refresh token 103) and the onboarding record the
// pages write after one link. docs/deploy.md section 3 quotes its output.
import { SECRET_VALUE_MAX_BYTES } from "../shared/adapters/secrets-manager/secrets-manager-secret-writer";

type Secret = Record<string, unknown>;

const id = (i: number) => `mailbox-${String(i).padStart(3, "0")}@acme-customer.example`;
const google = (i: number) => ({
  clientId: `${"1".repeat(12)}-${"a".repeat(32)}.apps.googleusercontent.com`,
  clientSecret: `GOCSPX-${"s".repeat(28)}`,
  refreshToken: `1//0${"r".repeat(99)}`,
  onboarding: {
    usedLinks: ["l".repeat(16)],
    connectedAt: 1764600000000,
    account: `customer.acme.${i}@gmail.com`,
  },
});

const layouts: [string, Secret, (secret: Secret, i: number) => void][] = [
  [
    "POP3 password (20 characters) + Google OAuth record connected by link",
    {},
    (secret, i) => {
      secret[id(i)] = "p".repeat(20);
      secret[`${id(i)}/google`] = google(i);
    },
  ],
  [
    "POP3 password only, beside one service-account key (2,350 bytes) all mailboxes name",
    { "google-service-account": { key: "k".repeat(2350) } },
    (secret, i) => {
      secret[id(i)] = "p".repeat(20);
    },
  ],
];

for (const [label, secret, add] of layouts) {
  let mailboxes = 0;
  for (;;) {
    const next = { ...secret };
    add(next, mailboxes);
    if (Buffer.byteLength(JSON.stringify(next)) > SECRET_VALUE_MAX_BYTES) break;
    add(secret, mailboxes);
    mailboxes++;
  }
  const bytes = Buffer.byteLength(JSON.stringify(secret));
  console.log(`${label}: ${mailboxes} mailboxes (${bytes} bytes)`);
}
