import { randomBytes } from "node:crypto";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { handle } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOnboardingLambdaApp } from "../../shared/adapters/lambda/onboarding-deps";
import { systemClock } from "../../shared/adapters/system-clock";
import { signInvite } from "../../shared/core/invite-link";
import { STAND_IN_REGION } from "../fakes/aws-stand-ins";
import { InMemoryLedger } from "../fakes/in-memory-ledger";
import { InMemorySessionLeases } from "../fakes/in-memory-session-leases";
import { startSecretsManagerStandIn } from "../fakes/secrets-manager-stand-in";

/**
 * The onboarding handler as the tenant's Lambda runs it (docs/onboarding.md, "Where it runs"):
 * the same Hono app through Hono's aws-lambda adapter, Function URL events in and out, Secrets
 * Manager (the stand-in, PutSecretValue included) as its secret store.
 */
const DOMAIN = "abcdefghij.lambda-url.eu-south-1.on.aws";
const GOOGLE_SECRET = "pop2gmail/acme/info/google";

function functionUrlEvent(
  method: "GET" | "POST",
  path: string,
  options: { cookies?: string[]; body?: string } = {},
) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: {
      host: DOMAIN,
      "accept-language": "it-IT,it;q=0.9",
      ...(options.body === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
    },
    ...(options.cookies === undefined ? {} : { cookies: options.cookies }),
    requestContext: {
      accountId: "anonymous",
      apiId: "abcdefghij",
      domainName: DOMAIN,
      domainPrefix: "abcdefghij",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "test" },
      requestId: randomBytes(8).toString("hex"),
      routeKey: "$default",
      stage: "$default",
      time: "01/Dec/2026:10:00:00 +0000",
      timeEpoch: 1_796_119_200_000,
    },
    ...(options.body === undefined ? {} : { body: options.body, isBase64Encoded: false }),
  };
}

describe("the onboarding Lambda behind a Function URL", () => {
  let secretsManager: Awaited<ReturnType<typeof startSecretsManagerStandIn>>;
  let handler: (event: unknown) => Promise<{
    statusCode: number;
    headers: Record<string, string>;
    cookies?: string[];
    body: string;
  }>;
  const key = randomBytes(32);

  beforeAll(async () => {
    secretsManager = await startSecretsManagerStandIn();
    secretsManager.secrets.set(
      "pop2gmail/acme/onboarding",
      JSON.stringify({ linkKey: key.toString("base64"), clientId: "web-client", clientSecret: "web-secret" }),
    );
    secretsManager.secrets.set(GOOGLE_SECRET, "{}");
    const env = {
      TENANT_CONFIG: JSON.stringify({
        tenant: "acme",
        mailboxes: [
          {
            id: "info@acme.it",
            pop3: { host: "pop.acme.it", user: "info@acme.it", passwordSecret: "pop2gmail/acme/info/pop3" },
            gmail: { user: "mario.rossi@gmail.example", credentialsSecret: GOOGLE_SECRET },
          },
        ],
      }),
      LEDGER_TABLE_NAME: "unused",
    };
    const app = createOnboardingLambdaApp(env, {
      secretsManager: new SecretsManagerClient({
        endpoint: secretsManager.endpoint,
        region: STAND_IN_REGION,
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
      }),
      ledger: new InMemoryLedger(),
      log: () => {},
    });
    handler = handle(app) as unknown as typeof handler;
  });

  afterAll(async () => {
    await secretsManager?.stop();
  });

  const token = () =>
    signInvite(key, { tenant: "acme", mailboxId: "info@acme.it", expiresAt: Date.now() + 3_600_000 }).token;
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  const cookiePairs = (cookies: readonly string[] = []) => cookies.map((c) => c.split(";")[0] ?? "");

  it("serves the page in Italian with the security headers and Secure cookies", async () => {
    // Act
    const response = await handler(functionUrlEvent("GET", `/o/${token()}`));
    // Assess
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("Collega Gmail");
    expect(response.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(response.headers["x-frame-options"]).toBe("DENY");
    expect(response.headers["strict-transport-security"]).toContain("max-age=");
    expect(response.cookies?.join("\n")).toMatch(/p2g_csrf=.*Secure/);
  });

  it("sends Connect to Google with the Function URL's own callback, and refuses it without the CSRF token", async () => {
    // Prepare
    const link = token();
    const page = await handler(functionUrlEvent("GET", `/o/${link}`));
    const cookies = cookiePairs(page.cookies);
    // Act
    const refused = await handler(
      functionUrlEvent("POST", `/o/${link}/connect`, { cookies, body: "csrf=forged" }),
    );
    const connect = await handler(
      functionUrlEvent("POST", `/o/${link}/connect`, { cookies, body: `csrf=${csrfOf(page.body)}` }),
    );
    // Assess
    expect(refused.statusCode).toBe(403);
    expect(connect.statusCode).toBe(303);
    const consent = new URL(connect.headers.location ?? "");
    expect(consent.searchParams.get("redirect_uri")).toBe(`https://${DOMAIN}/oauth/callback`);
    expect(connect.cookies?.join("\n")).toMatch(
      /p2g_signin=.*HttpOnly.*Secure|p2g_signin=.*Secure.*HttpOnly/,
    );
  });

  it("Disconnect writes the tenant's Google secret through PutSecretValue", async () => {
    // Prepare
    secretsManager.secrets.set(
      GOOGLE_SECRET,
      JSON.stringify({ clientId: "web-client", clientSecret: "web-secret", refreshToken: "1//stored" }),
    );
    const link = token();
    const page = await handler(functionUrlEvent("GET", `/o/${link}`));
    // Act
    const response = await handler(
      functionUrlEvent("POST", `/o/${link}/disconnect`, {
        cookies: cookiePairs(page.cookies),
        body: `csrf=${csrfOf(page.body)}`,
      }),
    );
    // Assess
    expect(response.statusCode).toBe(200);
    const stored = JSON.parse(secretsManager.secrets.get(GOOGLE_SECRET) ?? "{}");
    expect(stored.refreshToken).toBeUndefined();
    expect(typeof stored.onboarding.disconnectedAt).toBe("number");
  });

  /** The Lambda app for tenant acme with every credential a key of `shared` (docs/deploy.md, step 3). */
  const appWithTenantSecret = (shared: string, extra: Record<string, unknown>) =>
    handle(
      createOnboardingLambdaApp(
        {
          TENANT_CONFIG: JSON.stringify({
            tenant: "acme",
            ...extra,
            mailboxes: [
              {
                id: "info@acme.it",
                pop3: { host: "pop.acme.it", user: "info@acme.it", passwordSecret: `${shared}#info@acme.it` },
                gmail: {
                  user: "mario.rossi@gmail.example",
                  credentialsSecret: `${shared}#info@acme.it/google`,
                },
              },
            ],
          }),
          LEDGER_TABLE_NAME: "unused",
        },
        {
          secretsManager: new SecretsManagerClient({
            endpoint: secretsManager.endpoint,
            region: STAND_IN_REGION,
            credentials: { accessKeyId: "test", secretAccessKey: "test" },
          }),
          ledger: new InMemoryLedger(),
          leases: new InMemorySessionLeases(systemClock),
          log: () => {},
        },
      ),
    ) as unknown as typeof handler;

  it("reads its web client and link key from a key of the tenant secret when onboardingSecret names one", async () => {
    // Prepare: the whole tenant in one secret, the onboarding record included ($0.40, not $0.80).
    const shared = "pop2gmail/acme/all";
    secretsManager.secrets.set(
      shared,
      JSON.stringify({
        onboarding: { linkKey: key.toString("base64"), clientId: "web-client", clientSecret: "web-secret" },
        "info@acme.it/google": {},
      }),
    );
    const keyed = appWithTenantSecret(shared, { onboardingSecret: `${shared}#onboarding` });

    // Act
    const response = await keyed(functionUrlEvent("GET", `/o/${token()}`));

    // Assess
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("Collega Gmail");
  });

  it("Disconnect of a mailbox whose Google credentials are a key of the tenant secret keeps every other key", async () => {
    // Prepare: one secret for the tenant (docs/deploy.md, step 3); revocation goes to loopback.
    const shared = "pop2gmail/acme/credentials";
    secretsManager.secrets.set(
      shared,
      JSON.stringify({
        "info@acme.it": "pop3-password",
        "info@acme.it/google": {
          clientId: "web-client",
          clientSecret: "web-secret",
          refreshToken: "1//info",
        },
        "sales@acme.it/google": {
          clientId: "web-client",
          clientSecret: "web-secret",
          refreshToken: "1//sales",
        },
      }),
    );
    const keyed = appWithTenantSecret(shared, { google: { revokeUrl: "http://127.0.0.1:9/revoke" } });
    const link = token();
    const page = await keyed(functionUrlEvent("GET", `/o/${link}`));

    // Act
    const response = await keyed(
      functionUrlEvent("POST", `/o/${link}/disconnect`, {
        cookies: cookiePairs(page.cookies),
        body: `csrf=${csrfOf(page.body)}`,
      }),
    );

    // Assess
    expect(response.statusCode).toBe(200);
    const stored = JSON.parse(secretsManager.secrets.get(shared) ?? "{}");
    expect(stored["info@acme.it/google"].refreshToken).toBeUndefined();
    expect(typeof stored["info@acme.it/google"].onboarding.disconnectedAt).toBe("number");
    expect(stored["info@acme.it"]).toBe("pop3-password");
    expect(stored["sales@acme.it/google"].refreshToken).toBe("1//sales");
  });
});
