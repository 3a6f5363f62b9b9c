import { gmail as createGmailClient } from "@googleapis/gmail";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { smallTestMessage } from "../fakes/gmail-test-mail";

const USER = "info@acme.it";

describe("GmailApiStandIn", () => {
  let now = Date.UTC(2026, 0, 1);
  let standIn: GmailApiStandIn;
  let urls: { baseUrl: string; tokenUrl: string };
  const client = createGmailClient({ version: "v1" });

  beforeEach(async () => {
    standIn = new GmailApiStandIn({ now: () => now, quotaUnitsPerMinute: 60 });
    urls = await standIn.start();
    standIn.registerOAuthUser({
      user: USER,
      clientId: "c",
      clientSecret: "s",
      refreshToken: "r",
      scopes: [GMAIL_SCOPES.modify],
    });
  });
  afterEach(async () => {
    await standIn.stop();
  });

  async function token(): Promise<string> {
    const response = await fetch(urls.tokenUrl, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        client_id: "c",
        client_secret: "s",
        refresh_token: "r",
      }),
    });
    return ((await response.json()) as { access_token: string }).access_token;
  }
  function options(accessToken: string) {
    return { rootUrl: urls.baseUrl, retry: false, headers: { authorization: `Bearer ${accessToken}` } };
  }

  it("serves the plain JSON import, media upload and profile, and merges by Message-ID", async () => {
    // Prepare
    const accessToken = await token();
    const bytes = smallTestMessage("json@acme.it");

    // Act
    const json = await client.users.messages.import(
      { userId: "me", requestBody: { raw: bytes.toString("base64url"), labelIds: ["INBOX"] } },
      options(accessToken),
    );
    const media = await client.users.messages.import(
      { userId: USER, media: { mimeType: "message/rfc822", body: bytes } },
      options(accessToken),
    );
    const profile = await client.users.getProfile({ userId: "me" }, options(accessToken));

    // Assess
    expect(media.data.id).toBe(json.data.id);
    expect(standIn.messages(USER)).toHaveLength(1);
    expect(standIn.messages(USER)[0]?.raw.equals(bytes)).toBe(true);
    expect(standIn.rawImportCount("<json@acme.it>")).toBe(2);
    expect(profile.data.emailAddress).toBe(USER);
  });

  it("answers 429 with Retry-After once the per-minute quota is spent, and frees it a minute later", async () => {
    // Prepare: 60 units/min allow two imports (25 each).
    const accessToken = await token();
    const send = (n: number) =>
      client.users.messages
        .import(
          { userId: "me", requestBody: { raw: smallTestMessage(`q${n}@acme.it`).toString("base64url") } },
          options(accessToken),
        )
        .then(
          () => 200,
          (e: { response?: { status: number; headers: Headers } }) => e.response?.status,
        );

    // Act
    const first = [await send(1), await send(2), await send(3)];
    now += 60_000;
    const later = await send(4);

    // Assess
    expect(first).toEqual([200, 200, 429]);
    expect(later).toBe(200);
    expect(standIn.quotaRefusals()).toBe(1);
    expect(standIn.quotaRefusals(USER.toUpperCase())).toBe(1);
    expect(standIn.quotaRefusals("other@acme.it")).toBe(0);
  });

  it("refuses a revoked refresh token with invalid_grant and an unknown access token with 401", async () => {
    // Prepare
    standIn.revokeRefreshToken("r");

    // Act
    const refused = await fetch(urls.tokenUrl, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        client_id: "c",
        client_secret: "s",
        refresh_token: "r",
      }),
    });
    const unauthorised = await client.users.labels
      .list({ userId: "me" }, options("ya29.unknown"))
      .catch((e) => e);

    // Assess
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toBe("invalid_grant");
    expect(unauthorised.response?.status).toBe(401);
  });
});
