/** What `pop2gmail help` (and `--help`, `-h`, no verb at all) prints. */
export const HELP = `pop2gmail: moves mail from POP3 mailboxes into Gmail, with a byte-exact archive.

Usage: pop2gmail <verb> [flags]        pop2gmail <verb> --help (or -h) explains one verb

  demo [--keep] [--json]                 run the whole pipeline against a local POP3 server and a
                                         Gmail API stand-in (no account needed)
  run --config FILE [--once] [--json]    the local runtime: poll every pollSeconds until Ctrl-C, or
                                         drain every mailbox once with --once
  init <tenant> [flags]                  write a config (asks on a terminal; see init --help)
  check --config FILE [--json]           test POP3 (TLS, login, STAT) and Google (token, profile, scopes)
  status --config FILE [--json]          counts per ledger state, last poll, delays, quarantined messages
  replay --config FILE --since DATE      re-import archived messages newer than DATE into Gmail
  quarantine list|retry --config FILE    show quarantined messages, or release them for another copy

A deployed tenant (stack Pop2Gmail-<tenant>; AWS credentials and region as for the AWS CLI):
  status --aws --tenant T [--json]       counts per ledger state, queue and DLQ depth, quarantined
  quarantine list|retry --aws --tenant T [--uidl U] [--json]
                                         retry also sends the released messages' copy jobs
  redrive --aws --tenant T [--max N] [--json]
                                         move the dead-letter queue's jobs back to the work queue
  with --region R, --stack NAME (default Pop2Gmail-<tenant>), --tenants-dir DIR (default
  tenants/), or the resources given directly instead of read from the stack's outputs:
  --table NAME --queue-url URL --dlq-url URL
  auth google --config FILE [--client-file client_secret.json] [--read-scope]
                                         OAuth consent on a loopback redirect; stores the refresh token
                                         in <dataDir>/credentials.json
  invite <tenant> --mailbox ID [--expires 7d]
                                         a signed link that lets the mailbox's owner connect Gmail
                                         in their own browser (docs/onboarding.md)
  serve <tenant> [--port 8470]           the pages the links open, on 127.0.0.1

A provider's fleet (every tenant stack of one account and region; docs/deploy.md section 10):
  fleet status [--region R] [--json]     every tenant with its alarms in ALARM, last TenantProblems
                                         and backlog; exit 1 when one is unhealthy
  fleet deploy [--wave-size N] [--concurrency N] [--dry-run] [tenants...]
                                         cdk deploy in waves; stops at the first failed wave
  help [verb]                            this text, or one verb's

The config may also be given as the first argument after the verb: a file, or a tenant whose
config init wrote as <tenant>.local.json (pop2gmail status acme).
Exit codes: 0 ok, 1 failure (a check failed; a run quarantined, failed, was busy or left messages
in flight), 2 usage or config error (unknown key, missing secret, credentials file others can read).
Secrets: POP2GMAIL_SECRET_<NAME> environment variables, or <dataDir>/credentials.json (mode 0600).`;

const CONFIG = `The config: --config FILE (-c FILE), or the first argument: a file, or a tenant whose config
init wrote as <tenant>.local.json here.`;

const AWS = `A deployed tenant: --aws --tenant T (-t T), or the tenant as the first argument; the mailboxes
come from tenants/<T>.json (--tenants-dir DIR), the resources from the outputs of the stack
Pop2Gmail-<T> (--stack NAME, --region R) unless given as --table NAME --queue-url URL --dlq-url URL.
AWS credentials and region as for the AWS CLI.`;

/**
 * One text per verb, for `pop2gmail <verb> --help`, `-h` and `pop2gmail help <verb>`. `init`
 * prints its own (every flag it takes), so it is not here.
 */
export const VERB_HELP: Readonly<Record<string, string>> = {
  invite: `Usage: pop2gmail invite <tenant> --mailbox ID [--expires 7d] [--url URL]
                      [--client-file web_client.json | --client-id ID --client-secret S]

Prints a link for the owner of one mailbox: it opens a page that says which POP3 address goes
into which Gmail account, and a "Connect Gmail" button that asks Google for consent in their own
browser and stores the grant in <dataDir>/credentials.json. Afterwards the same link shows the
status and a Disconnect button. The link is signed with the tenant's link key (made on first use,
kept in the credentials file), expires, and connects once. docs/onboarding.md has the Google side.

  --mailbox ID     the mailbox (its gmail.auth must be oauth, with a secret of its own)
  --expires 7d     lifetime: days, hours or minutes (7d, 12h, 30m), at most 90d
  --url URL        where \`pop2gmail serve\` is reached (default http://127.0.0.1:8470); https
                   unless on 127.0.0.1
  --client-file    the OAuth client of type "Web application" (kept after the first time); its
                   redirect URI must be <URL>/oauth/callback
  --json           {"link","expiresAt"}

A deployed tenant: pop2gmail invite --aws --tenant T --mailbox ID --url <stack output OnboardingUrl>
signs with the key in the secret pop2gmail/<T>/onboarding (added there on first use).

${CONFIG}`,
  serve: `Usage: pop2gmail serve <tenant> [--port 8470] [--public-url URL]

Serves the pages the invite links open, on 127.0.0.1 only, until Ctrl-C. One JSON line per event
on stderr (tenant, mailbox, link id, outcome; never a token). --public-url is the address the
browser uses when a proxy in front of it terminates HTTPS.

${CONFIG}`,
  demo: `Usage: pop2gmail demo [--keep] [--json] [--messages N]

Runs the whole pipeline on this machine, no account needed: a POP3 server holding a generated
mailbox (varied messages, 8-bit and NUL bytes, dot lines, one without Message-ID, a ~4 MB
attachment) and a Gmail API stand-in, both on 127.0.0.1, with the local runtime between them in
a temporary data dir. Then it checks from the outside that every message was archived byte-exact,
is in Gmail exactly once and is gone from the POP3 box; exit 0 only when all of that holds.

  --keep         keep the temporary folder (archive, ledger, event log) to look at
  --json         the verdict as JSON on stdout
  --messages N   generated messages besides the awkward ones (default 42)`,

  run: `Usage: pop2gmail run --config FILE [--once] [--json]

The local runtime: polls every mailbox every pollSeconds until Ctrl-C (the first Ctrl-C finishes
the message in hand, a second one leaves at once).

  --once   drain every mailbox once and exit: 0 when every mailbox was reached and nothing was
           quarantined, failed, busy or left in flight; otherwise 1, with one line per reason
  --json   with --once, the run's summary as JSON (exitCode and reasons included)

${CONFIG}`,

  check: `Usage: pop2gmail check --config FILE [--json]

Tests each mailbox's POP3 side (TLS and certificate, capabilities, login, message count and size)
and its Google side (token refresh, profile, granted scopes); each failure prints its cause and
fix. Exit 1 when a step failed (2 when it is a config error); warnings do not change the exit code.

  --json   the steps and their results as JSON

${CONFIG}`,

  status: `Usage: pop2gmail status --config FILE [--json]
       pop2gmail status --aws --tenant T [--json]

Counts per ledger state, the last poll, delays and the quarantined messages with their reasons;
with --aws, the deployed tenant's ledger plus its work queue and dead-letter queue depth.

  --json   the same as JSON

${CONFIG}
${AWS}`,

  replay: `Usage: pop2gmail replay --config FILE --since DATE [--include-without-message-id]

Re-imports the archived messages newer than DATE (e.g. 2026-11-01 or 2026-11-01T08:00:00Z) into
Gmail from the archived bytes; Gmail merges a re-import with the message it already holds.

  --since DATE                   the oldest archived message to send again
  --include-without-message-id   also send messages without a Message-ID that the ledger shows in
                                 Gmail already (only when you know they are gone from Gmail)

${CONFIG}`,

  quarantine: `Usage: pop2gmail quarantine list|retry --config FILE [--uidl U] [--json]
       pop2gmail quarantine list|retry --aws --tenant T [--uidl U] [--json]

list shows the quarantined messages with their reasons; retry releases them (all but pre-existing
ones, or the one --uidl names) so the next run copies them again. With --aws, retry also sends the
released messages' copy jobs.

  --uidl U   only this message
  --json     the rows as JSON

${CONFIG}
${AWS}`,

  redrive: `Usage: pop2gmail redrive --aws --tenant T [--max N] [--json]

Moves the deployed tenant's dead-letter queue's jobs back to its work queue. The local runtime
has no dead-letter queue: use quarantine retry there.

  --max N   move at most N jobs, one by one (without it, SQS moves them all in one move task)
  --json    the result as JSON

${AWS}`,

  fleet: `Usage: pop2gmail fleet status [--region R] [--json]
       pop2gmail fleet deploy [--wave-size N] [--concurrency N] [--dry-run] [--json]
                              [--tenants-dir DIR] [--cdk COMMAND] [-c key=value]...
                              [--without-provider-topic] [tenants...]

status lists every tenant stack of the account and region (tag pop2gmail:tenant, or the id
Pop2Gmail-<tenant>) with its health: its pop2gmail-<tenant>-* alarms in ALARM, the last
TenantProblems datapoint (0 = healthy; none for 10 minutes = its keeper is not running) and its
work-queue backlog. A failed or rolled-back stack is unhealthy too. A few requests whatever the
fleet's size (500 tenants: 4 to 8; --json counts them). Exit 0 when every tenant is healthy, 1
otherwise (also when no tenant stack is found or a pop2gmail alarm in ALARM has no stack).

  --region R   the region (default: AWS_REGION or the profile's)
  --json       {region, checkedAt, tenants: [{tenant, stack, stackStatus, healthy, tenantProblems,
               tenantProblemsAt, backlog, alarms, reasons}], unhealthy, otherAlarms, apiCalls}

deploy runs \`cdk synth\` once for the whole app (with -c provider=true, so every alarm also goes
to the provider stack's topic pop2gmail-ops), then \`cdk deploy --app <assembly> <stacks>
--concurrency N --require-approval never\` wave by wave, every tenant of tenants/ or the ones
named, in that order. The first wave that fails stops it; it then says which tenants deployed,
which failed, which it cannot confirm and which it did not attempt. Exit 0 when all deployed.

  --wave-size N              tenants per wave (default 10)
  --concurrency N            stacks deployed at once within a wave (default 4)
  --dry-run                  print the waves and commands, deploy nothing
  --json                     the plan and outcome as JSON
  --tenants-dir DIR          the tenant configs (default tenants/)
  --cdk COMMAND              the cdk command (default "npx cdk")
  -c, --context key=value    more CDK context (breakGlassRoleName, logLevel), repeatable
  --without-provider-topic   no provider stack: the alarms go to each tenant's alarmEmail only

Deploy the provider stack first: npx cdk deploy Pop2Gmail-Provider [-c opsEmail=ops@example.com].
AWS credentials and region as for the AWS CLI.`,

  auth: `Usage: pop2gmail auth google --config FILE [--mailbox ID] [--client-file client_secret.json |
       --client-id ID --client-secret S] [--read-scope]

Runs Google's OAuth consent for a mailbox's Gmail user on a loopback redirect and stores the
refresh token in <dataDir>/credentials.json (mode 0600) under the mailbox's
gmail.credentialsSecret. A Workspace service account needs no consent: see docs/deploy.md.

  --mailbox ID       the mailbox whose Gmail user consents (default: the config's first)
  --client-file F    the OAuth client's client_secret.json (or --client-id and --client-secret)
  --read-scope       also ask for gmail.readonly, so a retry can look its own copy up first

${CONFIG}`,
};

/** `--help` or `-h` among the arguments, before a `--` that ends the flags. */
export function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  const flags = end === -1 ? args : args.slice(0, end);
  return flags.includes("--help") || flags.includes("-h");
}
