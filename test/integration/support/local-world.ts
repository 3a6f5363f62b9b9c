import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GmailApiStandIn } from "../../fakes/gmail-api-stand-in";
import type { ScriptedPop3Server } from "../../fakes/scripted-pop3-server";

/** What a local-runtime test file shares: a temp folder, the Gmail stand-in, its POP3 servers. */
export interface LocalWorld {
  readonly dir: string;
  readonly gmail: GmailApiStandIn;
  readonly google: { baseUrl: string; tokenUrl: string };
  /** Stops every server in `servers` (the file adds its own), the stand-in, and removes `dir`. */
  stop(): Promise<void>;
}

/** Starts the Gmail stand-in with one OAuth user, in a new temp folder named by `prefix`. */
export async function startLocalWorld(
  prefix: string,
  gmailUser: string,
  oauth: { clientId: string; clientSecret: string; refreshToken: string },
  servers: readonly ScriptedPop3Server[],
): Promise<LocalWorld> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const gmail = new GmailApiStandIn();
  const google = await gmail.start();
  gmail.registerOAuthUser({ user: gmailUser, ...oauth });
  return {
    dir,
    gmail,
    google,
    async stop() {
      for (const server of servers) await server.stop();
      await gmail.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
