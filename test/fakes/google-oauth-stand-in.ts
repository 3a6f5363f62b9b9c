import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { GmailApiStandIn } from "./gmail-api-stand-in";

/** What the stand-in saw of one consent request (for assertions on scopes, PKCE, offline access). */
export interface ConsentRequest {
  readonly params: Readonly<Record<string, string>>;
}

interface IssuedCode {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly challenge: string;
  readonly scopes: readonly string[];
  used: boolean;
}

/**
 * A loopback stand-in for Google's OAuth web flow: an authorize page with a consent button (and a
 * Cancel), the token endpoint (authorization code with PKCE; refresh grants are passed on to the
 * Gmail API stand-in, which holds the grants), and the revoke endpoint. A granted refresh token
 * is registered with the Gmail API stand-in for `account`, so the pipeline can import with it.
 */
export class GoogleOAuthStandIn {
  readonly #server: Server;
  readonly #codes = new Map<string, IssuedCode>();
  readonly #consents: ConsentRequest[] = [];
  readonly #revoked: string[] = [];
  readonly #exchanges: { ok: boolean; error?: string }[] = [];
  #baseUrl = "";
  #gmailTokenUrl = "";

  constructor(
    private readonly options: {
      readonly gmail: GmailApiStandIn;
      /** The Google account that signs in and consents. */
      readonly account: string;
      readonly client: { readonly clientId: string; readonly clientSecret: string };
    },
  ) {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        res.writeHead(500).end();
      });
    });
  }

  /** Listens on 127.0.0.1; the URLs go into the tenant config's `google` section. */
  async start(gmailTokenUrl: string): Promise<{ authorizeUrl: string; tokenUrl: string; revokeUrl: string }> {
    this.#gmailTokenUrl = gmailTokenUrl;
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.#baseUrl = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return {
      authorizeUrl: `${this.#baseUrl}/o/oauth2/v2/auth`,
      tokenUrl: `${this.#baseUrl}/token`,
      revokeUrl: `${this.#baseUrl}/revoke`,
    };
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  consents(): readonly ConsentRequest[] {
    return this.#consents;
  }

  /** Refresh tokens revoked through the revoke endpoint. */
  revoked(): readonly string[] {
    return this.#revoked;
  }

  exchanges(): readonly { ok: boolean; error?: string }[] {
    return this.#exchanges;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.#baseUrl);
    if (req.method === "GET" && url.pathname === "/o/oauth2/v2/auth") return this.#authorize(url, res);
    const body = new URLSearchParams((await readBody(req)).toString("utf8"));
    if (req.method === "POST" && url.pathname === "/approve") return this.#approve(body, res);
    if (req.method === "POST" && url.pathname === "/token") return this.#token(body, res);
    if (req.method === "POST" && url.pathname === "/revoke") {
      const token = body.get("token") ?? "";
      this.#revoked.push(token);
      this.options.gmail.revokeRefreshToken(token);
      return json(res, 200, {});
    }
    res.writeHead(404).end();
  }

  #authorize(url: URL, res: ServerResponse): void {
    const params = Object.fromEntries(url.searchParams);
    this.#consents.push({ params });
    if (params.client_id !== this.options.client.clientId || params.response_type !== "code") {
      res.writeHead(400, { "content-type": "text/html" }).end("<h1>Error 400: invalid_request</h1>");
      return;
    }
    const hidden = Object.entries(params)
      .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
      .join("");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>Sign in - Google Accounts (stand-in)</title>
<h1>pop2gmail wants to access your Google Account</h1>
<p>${esc(this.options.account)}</p>
<p>Scopes: ${esc(params.scope ?? "")}</p>
<form method="post" action="/approve">${hidden}
<button name="decision" value="allow" id="allow">Allow</button>
<button name="decision" value="deny" id="deny">Cancel</button>
</form>`);
  }

  #approve(form: URLSearchParams, res: ServerResponse): void {
    const redirect = new URL(form.get("redirect_uri") ?? "");
    const state = form.get("state");
    if (form.get("decision") !== "allow") {
      redirect.searchParams.set("error", "access_denied");
    } else {
      const code = `4/${randomBytes(18).toString("base64url")}`;
      this.#codes.set(code, {
        clientId: form.get("client_id") ?? "",
        redirectUri: form.get("redirect_uri") ?? "",
        challenge: form.get("code_challenge") ?? "",
        scopes: (form.get("scope") ?? "").split(" ").filter(Boolean),
        used: false,
      });
      redirect.searchParams.set("code", code);
    }
    if (state !== null) redirect.searchParams.set("state", state);
    res.writeHead(302, { location: redirect.href }).end();
  }

  async #token(form: URLSearchParams, res: ServerResponse): Promise<void> {
    if (form.get("grant_type") !== "authorization_code") {
      // Refresh grants: the Gmail API stand-in issues the access tokens it accepts.
      const passed = await fetch(this.#gmailTokenUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form,
      });
      res.writeHead(passed.status, { "content-type": "application/json" }).end(await passed.text());
      return;
    }
    const issued = this.#codes.get(form.get("code") ?? "");
    const verifier = form.get("code_verifier") ?? "";
    const error =
      issued === undefined || issued.used
        ? "invalid_grant"
        : issued.clientId !== form.get("client_id") ||
            form.get("client_secret") !== this.options.client.clientSecret
          ? "invalid_client"
          : issued.redirectUri !== form.get("redirect_uri") ||
              createHash("sha256").update(verifier).digest("base64url") !== issued.challenge
            ? "invalid_grant"
            : undefined;
    if (issued !== undefined) issued.used = true;
    this.#exchanges.push(error === undefined ? { ok: true } : { ok: false, error });
    if (error !== undefined || issued === undefined) return json(res, 400, { error });
    const refreshToken = `1//${randomBytes(24).toString("base64url")}`;
    this.options.gmail.registerOAuthUser({
      user: this.options.account,
      ...this.options.client,
      refreshToken,
      scopes: issued.scopes,
    });
    json(res, 200, {
      access_token: `ya29.${randomBytes(12).toString("base64url")}`,
      refresh_token: refreshToken,
      expires_in: 3599,
      scope: issued.scopes.join(" "),
      token_type: "Bearer",
    });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
