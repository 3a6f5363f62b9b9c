import { appendFile, chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  packageVersion,
  prepareRoot,
  type RealPop3Server,
  serverFile,
  startInetd,
  userOf,
  waitForGreeting,
} from "./contained-server";

/**
 * popa3d 1.0.3 (Debian `popa3d`, unpacked into .servers/): an inetd-style server on 127.0.0.1,
 * one process per connection, in a mount namespace (test/fakes/contained-server.ts). Its paths
 * are compiled in: PAM service `popa3d`, the `popa3d` account, an empty chroot at
 * /var/lib/popa3d and mbox spools in /var/mail; the namespace's overlays provide all four.
 * No CAPA, no STLS, no AUTH: USER/PASS (and APOP off) over plaintext only.
 */
export async function startPopa3d(
  users: Readonly<Record<string, string>> = { mailbox: "mailbox-password" },
): Promise<RealPop3Server> {
  const binary = serverFile("popa3d", "usr/sbin/popa3d");
  const root = await prepareRoot("popa3d", users, {
    system: [{ name: "popa3d", uid: 40_090, gid: 40_090 }],
    pamServices: ["popa3d"],
  });
  const spool = join(root.upper("var"), "mail");
  await mkdir(join(root.upper("var"), "lib", "popa3d"), { recursive: true });
  await mkdir(spool, { recursive: true });
  for (const user of root.users) {
    await writeFile(join(spool, user.name), "", { mode: 0o600 });
    await chown(join(spool, user.name), user.uid, user.gid);
  }
  const server = await startInetd(root, `exec ${binary}`);
  await waitForGreeting(server.port, "popa3d");
  return {
    name: "popa3d",
    version: await packageVersion("popa3d"),
    host: "127.0.0.1",
    port: server.port,
    users,
    async deliver(user, message) {
      userOf(root, user);
      await appendFile(join(spool, user), toMboxEntry(message));
    },
    stop: server.stop,
  };
}

/**
 * One mbox entry (mboxrd): a `From ` separator, the message with LF line ends and `>` before any
 * line that starts with `>*From `, and an empty line after it.
 */
function toMboxEntry(message: Buffer): Buffer {
  const text = message.toString("latin1").replaceAll("\r\n", "\n");
  const quoted = text.replace(/^(>*From )/gm, ">$1");
  const ended = quoted.endsWith("\n") ? quoted : `${quoted}\n`;
  return Buffer.from(`From pop2gmail@localhost Tue Dec  1 00:00:00 2026\n${ended}\n`, "latin1");
}
