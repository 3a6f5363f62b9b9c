import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import {
  type DynaliteStandIn,
  type FauxqsStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  startFauxqsStandIn,
} from "../../fakes/aws-stand-ins";
import { type DovecotServer, startDovecot } from "../../fakes/dovecot";
import { GMAIL_SCOPES, GmailApiStandIn } from "../../fakes/gmail-api-stand-in";
import { secretsManagerHandler } from "../../fakes/secrets-manager-stand-in";
import { echoInto } from "./gmail-fault-proxy";

/** The credentials of one mailbox: its POP3 password and its Google OAuth client and refresh token. */
export interface MailboxCredentials {
  readonly pop3Password: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
}

/** The Gmail address a Dovecot user's mail goes to. */
export function gmailUserOf(user: string): string {
  return `${user}.acme@gmail.com`;
}

/** The Secrets Manager names the tenant config points at. */
export const secretNames = (user: string) => ({ pop3: `pop3/${user}`, google: `google/${user}` });

/**
 * Every server the campaign and the secrets scan run against, on 127.0.0.1: Dovecot (by default
 * with `pop3_lock_session`, so a parked session earns `-ERR [IN-USE]`), fauxqs (SQS and S3),
 * dynalite (DynamoDB), the Gmail API stand-in (its fault PRNG seeded from the campaign seed), a
 * Secrets Manager stand-in, and a recording forwarder in front of the OAuth token endpoint (it
 * keeps every access token issued, so a test can look for them in logs).
 */
export class CampaignWorld {
  private constructor(
    readonly dovecot: DovecotServer,
    readonly fauxqs: FauxqsStandIn,
    readonly dynalite: DynaliteStandIn,
    readonly gmail: GmailApiStandIn,
    readonly gmailBaseUrl: string,
    readonly tokenUrl: string,
    readonly secretsEndpoint: string,
    /** Secrets Manager contents: name -> SecretString. */
    readonly secrets: Map<string, string>,
    /** Every access token the token endpoint handed out. */
    readonly issuedAccessTokens: string[],
    private readonly servers: Server[],
  ) {}

  static async start(options: {
    readonly users: Readonly<Record<string, MailboxCredentials>>;
    readonly gmailSeed: number;
    readonly lockSession?: boolean;
    /** POP3 passwords to put in Secrets Manager instead of the real ones (a wrong password). */
    readonly storedPop3Passwords?: Readonly<Record<string, string>>;
    /**
     * Asked once per token error answer: true makes it quote the request's form (client secret,
     * refresh token) in its `error_description`, as a careless front end does.
     */
    readonly echoTokenErrors?: () => boolean;
  }): Promise<CampaignWorld> {
    const stoppers: (() => Promise<void>)[] = [];
    try {
      const dovecot = await startDovecot({
        users: Object.fromEntries(Object.entries(options.users).map(([u, c]) => [u, c.pop3Password])),
        lockSession: options.lockSession ?? true,
      });
      stoppers.push(() => dovecot.stop());
      const fauxqs = await startFauxqsStandIn();
      stoppers.push(() => fauxqs.stop());
      const dynalite = await startDynaliteStandIn();
      stoppers.push(() => dynalite.stop());
      const gmail = new GmailApiStandIn({ seed: options.gmailSeed });
      const urls = await gmail.start();
      stoppers.push(() => gmail.stop());
      const secrets = new Map<string, string>();
      const secretsServer = await listen(secretsManagerHandler(secrets));
      stoppers.push(() => close(secretsServer));
      const issuedAccessTokens: string[] = [];
      const tokenServer = await listen(
        recordingTokenForwarder(urls.tokenUrl, issuedAccessTokens, options.echoTokenErrors ?? (() => false)),
      );
      stoppers.push(() => close(tokenServer));
      for (const [user, credentials] of Object.entries(options.users)) {
        const names = secretNames(user);
        secrets.set(names.pop3, options.storedPop3Passwords?.[user] ?? credentials.pop3Password);
        secrets.set(
          names.google,
          JSON.stringify({
            clientId: credentials.clientId,
            clientSecret: credentials.clientSecret,
            refreshToken: credentials.refreshToken,
          }),
        );
        gmail.registerOAuthUser({
          user: gmailUserOf(user),
          clientId: credentials.clientId,
          clientSecret: credentials.clientSecret,
          refreshToken: credentials.refreshToken,
          scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
        });
      }
      return new CampaignWorld(
        dovecot,
        fauxqs,
        dynalite,
        gmail,
        urls.baseUrl,
        `${urlOf(tokenServer)}/token`,
        urlOf(secretsServer),
        secrets,
        issuedAccessTokens,
        [secretsServer, tokenServer],
      );
    } catch (error) {
      for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
      throw error;
    }
  }

  /** Stops every server; safe to call once everything started. */
  async stop(): Promise<void> {
    this.gmail.releaseStalled();
    await this.gmail.stop();
    for (const server of this.servers) await close(server);
    await this.fauxqs.stop();
    await this.dynalite.stop();
    await this.dovecot.stop();
  }

  /** The SDK's endpoint variables for the function environment. */
  awsEndpointEnv(): NodeJS.ProcessEnv {
    return {
      AWS_REGION: STAND_IN_REGION,
      AWS_ENDPOINT_URL_S3: this.fauxqs.endpoint,
      AWS_ENDPOINT_URL_SQS: this.fauxqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: this.dynalite.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: this.secretsEndpoint,
    };
  }
}

/**
 * Forwards token requests to the stand-in and keeps the `access_token` of every answer; an error
 * answer quotes the request's form when `echo()` says so.
 */
function recordingTokenForwarder(target: string, issued: string[], echo: () => boolean) {
  const url = new URL(target);
  return (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      const upstream = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: request.method,
          headers: { ...request.headers, host: url.host, "content-length": String(body.length) },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => parts.push(chunk));
          answer.on("end", () => {
            let text = Buffer.concat(parts);
            try {
              const token = (JSON.parse(text.toString("utf8")) as { access_token?: unknown }).access_token;
              if (typeof token === "string") issued.push(token);
            } catch {
              // Not JSON: nothing issued.
            }
            const status = answer.statusCode ?? 502;
            if (status >= 400 && echo())
              text = Buffer.from(echoInto(text.toString("utf8"), body.toString("utf8")));
            response.writeHead(status, { ...answer.headers, "content-length": String(text.length) });
            response.end(text);
          });
        },
      );
      upstream.on("error", () => response.destroy());
      upstream.end(body);
    });
  };
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function urlOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
