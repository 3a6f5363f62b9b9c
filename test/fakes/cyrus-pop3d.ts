import { execFile } from "node:child_process";
import { chown, mkdir, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  packageVersion,
  prepareRoot,
  type RealPop3Server,
  SERVERS_DIR,
  serverFile,
  startDaemon,
  waitForGreeting,
} from "./contained-server";
import { findFreePort } from "./free-port";
import { createTestCertificates } from "./test-certificates";

const run = promisify(execFile);
/** Debian's `cyrus` account and `mail` group, as the binaries expect them. */
const CYRUS = { name: "cyrus", uid: 40_091, gid: 8 };

/** A running Cyrus POP3 server, with STLS offered on its plaintext port. */
export interface CyrusServer extends RealPop3Server {
  readonly caPem: string;
}

/**
 * Cyrus IMAP 3.6.1's `pop3d` (`cyrus-pop3d` + `cyrus-common`, unpacked into .servers/) under its
 * `master` on 127.0.0.1, from an imapd.conf and a cyrus.conf in a temp folder (`-C`, `-M`): the
 * settings of Debian's shipped imapd.conf with every path moved into the folder. The binaries
 * look the `cyrus` account up, so they run in a mount namespace whose /etc has it
 * (test/fakes/contained-server.ts). Passwords in a sasldb (`saslpasswd2`); mail is delivered over
 * LMTP to its `lmtpd`, INBOXes are created on first delivery. `popminpoll` defaults to Debian's 1
 * (minute): the server announces `LOGIN-DELAY 60` and refuses a second login within 60 s.
 */
export async function startCyrusPop3d(
  options: { users?: Readonly<Record<string, string>>; popminpollMinutes?: number } = {},
): Promise<CyrusServer> {
  const users = options.users ?? { mailbox: "mailbox-password" };
  const bin = (name: string) => serverFile("cyrus-common", `usr/lib/cyrus/bin/${name}`);
  const pop3d = serverFile("cyrus-pop3d", "usr/lib/cyrus/bin/pop3d");
  const saslpasswd2 = serverFile("sasl2-bin", "usr/sbin/saslpasswd2");
  const root = await prepareRoot("cyrus", users, { system: [CYRUS] });
  const certificates = await createTestCertificates(root.dir);
  const d = join(root.dir, "cyrus");
  for (const sub of ["config", "spool", "run/socket", "run/lock", "run/proc"]) {
    await mkdir(join(d, sub), { recursive: true });
  }
  const port = await findFreePort();
  const sasldb = join(d, "sasldb2");
  for (const [user, password] of Object.entries(users)) {
    await new Promise<void>((resolve, reject) => {
      const child = execFile(saslpasswd2, ["-f", sasldb, "-p", "-c", "-u", "localhost", user], (error) =>
        error ? reject(error) : resolve(),
      );
      child.stdin?.end(password);
    });
  }
  const imapdConf = join(d, "imapd.conf");
  await writeFile(
    imapdConf,
    [
      `configdirectory: ${d}/config`,
      `proc_path: ${d}/run/proc`,
      `mboxname_lockpath: ${d}/run/lock`,
      "defaultpartition: default",
      `partition-default: ${d}/spool`,
      "altnamespace: no",
      "unixhierarchysep: no",
      "lmtp_downcase_rcpt: yes",
      "allowanonymouslogin: no",
      `popminpoll: ${options.popminpollMinutes ?? 1}`,
      "autocreate_quota: 0",
      "autocreate_post: yes",
      "umask: 077",
      "hashimapspool: true",
      "allowplaintext: yes",
      "sasl_pwcheck_method: auxprop",
      "sasl_auxprop_plugin: sasldb",
      `sasl_sasldb_path: ${sasldb}`,
      "sasl_auto_transition: no",
      "servername: localhost",
      `lmtpsocket: ${d}/run/socket/lmtp`,
      `idlesocket: ${d}/run/socket/idle`,
      `notifysocket: ${d}/run/socket/notify`,
      "syslog_prefix: cyrus-test",
      `tls_server_cert: ${certificates.serverCertPath}`,
      `tls_server_key: ${certificates.serverKeyPath}`,
      "",
    ].join("\n"),
  );
  await writeFile(
    join(d, "cyrus.conf"),
    [
      "START {",
      `  recover cmd="${bin("ctl_cyrusdb")} -C ${imapdConf} -r"`,
      "}",
      "SERVICES {",
      `  pop3 cmd="${pop3d} -C ${imapdConf}" listen="127.0.0.1:${port}" prefork=0 maxchild=20`,
      `  lmtpunix cmd="${bin("lmtpd")} -C ${imapdConf}" listen="${d}/run/socket/lmtp" prefork=0 maxchild=5`,
      "}",
      "EVENTS {",
      "}",
      "",
    ].join("\n"),
  );
  await run("chown", ["-R", `${CYRUS.uid}:${CYRUS.gid}`, d]);
  await chown(certificates.serverKeyPath, CYRUS.uid, CYRUS.gid);
  await chown(certificates.serverCertPath, CYRUS.uid, CYRUS.gid);
  const stop = startDaemon(
    root,
    `exec ${bin("master")} -C ${imapdConf} -M ${d}/cyrus.conf -p ${d}/master.pid`,
    {
      LD_LIBRARY_PATH: join(SERVERS_DIR, "cyrus-common", "usr", "lib", "x86_64-linux-gnu"),
    },
  );
  try {
    await waitForGreeting(port, "cyrus pop3d", join(root.dir, "server.log"));
  } catch (error) {
    await stop();
    throw error;
  }
  const lmtpSocket = join(d, "run", "socket", "lmtp");
  return {
    name: "cyrus",
    version: await packageVersion("cyrus-pop3d"),
    host: "127.0.0.1",
    port,
    users,
    caPem: certificates.caPem,
    deliver: (user, message) => deliverOverLmtp(lmtpSocket, user, message),
    stop,
  };
}

/** RFC 2033 LMTP: LHLO, MAIL, RCPT, DATA with the message dot-stuffed, QUIT. */
async function deliverOverLmtp(path: string, user: string, message: Buffer): Promise<void> {
  const socket = connect(path);
  let buffered = "";
  const waiters: ((line: string) => void)[] = [];
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    for (;;) {
      const end = buffered.indexOf("\r\n");
      if (end === -1) break;
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      // Multi-line replies ("250-"): only the last line ends the reply.
      if (/^\d{3} /.test(line)) waiters.shift()?.(line);
    }
  });
  const reply = (expect: string) =>
    new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      waiters.push((line) => (line.startsWith(expect) ? resolve() : reject(new Error(`LMTP: ${line}`))));
    });
  try {
    await reply("220");
    socket.write("LHLO localhost\r\n");
    await reply("250");
    socket.write("MAIL FROM:<pop2gmail@localhost>\r\n");
    await reply("250");
    socket.write(`RCPT TO:<${user}>\r\n`);
    await reply("250");
    socket.write("DATA\r\n");
    await reply("354");
    const text = message.toString("latin1");
    const ended = text.endsWith("\r\n") ? text : `${text}\r\n`;
    socket.write(Buffer.from(`${ended.replace(/^\./gm, "..")}.\r\n`, "latin1"));
    await reply("250");
    socket.write("QUIT\r\n");
  } finally {
    socket.end();
  }
}
