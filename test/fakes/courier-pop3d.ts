import { chown, cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  deliverToMaildir,
  makeMaildir,
  packageVersion,
  prepareRoot,
  type RealPop3Server,
  SERVERS_DIR,
  serverFile,
  startDaemon,
  userOf,
  waitForGreeting,
} from "./contained-server";
import { findFreePort } from "./free-port";
import { createTestCertificates } from "./test-certificates";

/** Debian's `courier` account: couriertls drops to it and must read the certificate file. */
const COURIER = { name: "courier", uid: 40_092, gid: 40_092 };

/** A running Courier POP3 server, with STLS offered on its plaintext port. */
export interface CourierServer extends RealPop3Server {
  readonly caPem: string;
}

/**
 * Courier 1.0.16 (`courier-pop`, `courier-base`, `courier-authlib`, unpacked into .servers/):
 * `couriertcpd` on 127.0.0.1 runs `courierpop3login` (authentication through `authdaemond`,
 * module authpam) and then `courierpop3d` on the user's ~/Maildir. authdaemond's paths are
 * compiled in (/etc/courier/authdaemonrc, /run/courier/authdaemon, /usr/lib/courier-authlib):
 * the namespace's overlays provide them (test/fakes/contained-server.ts). STLS through
 * `couriertls` with a test certificate; AUTH PLAIN and LOGIN; it announces `UTF8 USER` and
 * `LOGIN-DELAY 10` (advisory: it does not refuse an earlier login).
 */
export async function startCourierPop3d(
  users: Readonly<Record<string, string>> = { mailbox: "mailbox-password" },
): Promise<CourierServer> {
  const pop3login = serverFile("courier-pop", "usr/lib/courier/courier/courierpop3login");
  const pop3d = serverFile("courier-pop", "usr/lib/courier/courier/courierpop3d");
  const tcpd = serverFile("courier-base", "usr/sbin/couriertcpd");
  const couriertls = serverFile("courier-base", "usr/bin/couriertls");
  const authdaemond = serverFile("courier-authlib", "usr/lib/courier/courier-authlib/authdaemond");
  const root = await prepareRoot("courier", users, {
    system: [COURIER],
    pamServices: ["pop3"],
  });
  const certificates = await createTestCertificates(root.dir);
  const tlsPem = join(root.dir, "courier-tls.pem");
  await writeFile(
    tlsPem,
    Buffer.concat([await readFile(certificates.serverCertPath), await readFile(certificates.serverKeyPath)]),
    { mode: 0o600 },
  );
  await chown(tlsPem, COURIER.uid, COURIER.gid);
  await mkdir(join(root.upper("etc"), "courier"), { recursive: true });
  await writeFile(
    join(root.upper("etc"), "courier", "authdaemonrc"),
    'authmodulelist="authpam"\nauthmodulelistorig="authpam"\ndaemons=1\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n',
  );
  await mkdir(join(root.upper("run"), "courier", "authdaemon"), { recursive: true });
  await cp(
    serverFile("courier-authlib", "usr/lib/courier-authlib"),
    join(root.upper("usr/lib"), "courier-authlib"),
    {
      recursive: true,
    },
  );
  for (const user of root.users) await makeMaildir(join(user.home, "Maildir"), user);
  const port = await findFreePort();
  const libraries = join(SERVERS_DIR, "courier-authlib", "usr", "lib");
  const script = [
    `${authdaemond} &`,
    // authdaemond needs a moment to open its socket; courierpop3login retries only briefly.
    "for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /run/courier/authdaemon/socket ] && break; sleep 0.2; done",
    `exec ${tcpd} -address=127.0.0.1 -nodnslookup -noidentlookup -maxprocs=20 -maxperip=20 ${port} ${pop3login} ${pop3d} Maildir`,
  ].join("\n");
  const stop = startDaemon(root, script, {
    LD_LIBRARY_PATH: libraries,
    POP3AUTH: "PLAIN LOGIN",
    POP3AUTH_TLS: "PLAIN LOGIN",
    POP3_STARTTLS: "YES",
    POP3_TLS_REQUIRED: "0",
    COURIERTLS: couriertls,
    TLS_CERTFILE: tlsPem,
    MAILDIRPATH: "Maildir",
  });
  try {
    await waitForGreeting(port, "courier pop3d", join(root.dir, "server.log"));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name: "courier",
    version: await packageVersion("courier-pop"),
    host: "127.0.0.1",
    port,
    users,
    caPem: certificates.caPem,
    deliver: (user, message) => {
      const owner = userOf(root, user);
      return deliverToMaildir(join(owner.home, "Maildir"), owner, message);
    },
    stop,
  };
}
