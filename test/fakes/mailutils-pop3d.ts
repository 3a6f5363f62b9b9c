import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  deliverToMaildir,
  makeMaildir,
  packageVersion,
  prepareRoot,
  type RealPop3Server,
  serverFile,
  startDaemon,
  userOf,
  waitForGreeting,
} from "./contained-server";
import { findFreePort } from "./free-port";
import { createTestCertificates } from "./test-certificates";

/** A running GNU Mailutils pop3d, with STLS offered on its plaintext port. */
export interface MailutilsServer extends RealPop3Server {
  readonly caPem: string;
}

/**
 * GNU Mailutils 3.15 `pop3d` (Debian `mailutils-pop3d`, unpacked into .servers/) as a daemon on
 * 127.0.0.1 from a config file in a temp folder (`--config-file` implies no site config), in a
 * mount namespace whose /etc holds the test users (system authentication: getpwnam + shadow).
 * Maildirs in the temp folder; mandatory locking with its lock folder there, so a second session
 * gets `-ERR [IN-USE]`.
 */
export async function startMailutilsPop3d(
  users: Readonly<Record<string, string>> = { mailbox: "mailbox-password" },
): Promise<MailutilsServer> {
  const binary = serverFile("mailutils-pop3d", "usr/sbin/pop3d");
  // pop3d switches to the `mail` group for its spool, as on Debian.
  const root = await prepareRoot("mailutils", users, { system: [{ name: "mail", uid: 8, gid: 8 }] });
  const certificates = await createTestCertificates(root.dir);
  const port = await findFreePort();
  const maildirs = join(root.dir, "maildirs");
  const locks = join(root.dir, "locks");
  await mkdir(locks, { recursive: true, mode: 0o1777 });
  await mkdir(maildirs, { recursive: true });
  // Its locker writes next to the maildir and into the lock folder as the mail user.
  await chmod(maildirs, 0o1777);
  await chmod(locks, 0o1777);
  for (const user of root.users) await makeMaildir(join(maildirs, user.name), user);
  const config = join(root.dir, "pop3d.conf");
  await writeFile(
    config,
    [
      "logging { syslog no; };",
      "auth { authentication system; authorization system; };",
      `mailbox { mailbox-pattern "maildir://${maildirs}/\${user}"; };`,
      "mode daemon;",
      "foreground yes;",
      "tcp-wrappers { enable no; };",
      `mandatory-locking { enable yes; lock-directory "${locks}"; };`,
      "tls-file-checks { key-file none; cert-file none; ca-file none; };",
      `server 127.0.0.1:${port} { tls-mode ondemand; tls { ssl-certificate-file "${certificates.serverCertPath}"; ssl-key-file "${certificates.serverKeyPath}"; }; };`,
      "",
    ].join("\n"),
  );
  const stop = startDaemon(root, `exec ${binary} --config-file=${config}`);
  try {
    await waitForGreeting(port, "mailutils pop3d", join(root.dir, "server.log"));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name: "mailutils",
    version: await packageVersion("mailutils-pop3d"),
    host: "127.0.0.1",
    port,
    users,
    caPem: certificates.caPem,
    deliver: (user, message) => deliverToMaildir(join(maildirs, user), userOf(root, user), message),
    stop,
  };
}
