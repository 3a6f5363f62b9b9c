import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { renderDovecotConfig } from "./dovecot-config";
import { findFreePort } from "./free-port";
import { createTestCertificates } from "./test-certificates";

/** Where Debian's dovecot-core puts the binary; `DOVECOT_BIN` overrides it. */
const DOVECOT_BIN = process.env.DOVECOT_BIN ?? "/usr/sbin/dovecot";
const DEBIAN_DH_PARAMS = "/usr/share/dovecot/dh.pem";
const STARTUP_DEADLINE_MS = 15_000;
const DEFAULT_USERS: Readonly<Record<string, string>> = { mailbox: "mailbox-password" };

/** Options of {@link startDovecot}. */
export interface DovecotOptions {
  /** `pop3_lock_session = yes`: a second session of the same user gets `-ERR [IN-USE]`. */
  readonly lockSession?: boolean;
  /** User name -> plain password. Defaults to `{ mailbox: "mailbox-password" }`. */
  readonly users?: Record<string, string>;
}

/** A running Dovecot serving POP3 on 127.0.0.1, everything it owns inside one temp folder. */
export interface DovecotServer {
  readonly host: "127.0.0.1";
  /** Plaintext POP3 with STLS offered. */
  readonly plainPort: number;
  /** POP3 over implicit TLS (the 995 style). */
  readonly tlsPort: number;
  /** The test CA that signed the server certificate (SAN IP:127.0.0.1, DNS:localhost). */
  readonly caPem: string;
  /** SHA-256 of the server certificate's DER, lower-case hex without separators. */
  readonly certSha256: string;
  /** The same fingerprint in Node's `AB:CD:...` form. */
  readonly certFingerprint256: string;
  readonly users: Readonly<Record<string, string>>;
  /**
   * Drops a message into the user's Maildir atomically (write into tmp/, then rename into new/,
   * as Maildir requires) and resolves with the file name. The bytes are stored as given.
   */
  deliver(user: string, messageBytes: Buffer | Uint8Array): Promise<string>;
  /** The user's Maildir folder. */
  maildir(user: string): string;
  /** How many message files the user's Maildir holds now (new/ plus cur/). */
  storedMessageCount(user: string): Promise<number>;
  /** Stops Dovecot and removes the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Runs Dovecot in a session of its own and kills that whole process group when stdin closes: on
 * `stop()`, and also when the test process dies without cleaning up (the pipe closes with it),
 * so no Dovecot process outlives its test run. SIGKILL to the group, because a SIGTERM-ed master
 * takes a second to exit and leaves the pop3, log and stats children of open sessions behind;
 * killed processes write nothing more, so the folder can go right after.
 * If Dovecot dies on its own the folder is kept, so the caller can read the logs.
 * fd 3 carries stdin into the background reader: POSIX shells give background jobs /dev/null.
 */
const WATCHDOG_SCRIPT = [
  'dovecot_bin="$1"; config="$2"; dir="$3"',
  "exec 3<&0",
  'setsid "$dovecot_bin" -F -c "$config" </dev/null >>"$dir/dovecot.stderr" 2>&1 3<&- &',
  "dovecot_pid=$!",
  // The marker sits beside the folder, not in it, so that removing the folder cannot race it.
  '( read -r _line <&3; : >"$dir.stopping"; kill -KILL "-$dovecot_pid" 2>/dev/null ) &',
  "reader_pid=$!",
  'wait "$dovecot_pid"',
  "status=$?",
  'if [ -e "$dir.stopping" ]; then rm -rf "$dir" "$dir.stopping"; else kill "$reader_pid" 2>/dev/null; fi',
  'exit "$status"',
].join("\n");

let deliveryCounter = 0;

/**
 * Starts the real Dovecot (`dovecot -F -c <temp>/dovecot.conf`) on 127.0.0.1 with random free
 * ports, a test CA made with openssl, a passwd-file of plain passwords and Maildirs in a temp
 * folder, and resolves once the POP3 greeting arrives. Fails (never skips) when Dovecot is missing.
 */
export async function startDovecot(options: DovecotOptions = {}): Promise<DovecotServer> {
  if (!existsSync(DOVECOT_BIN)) {
    throw new Error(
      `Dovecot is not installed (${DOVECOT_BIN} is missing). Run \`npm run setup\` to install dovecot-pop3d.`,
    );
  }
  const users = options.users ?? DEFAULT_USERS;
  validateUsers(users);
  let lastError: unknown;
  // The free-port probe can race with another process; a bind failure gets fresh ports.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startInFolder(users, options.lockSession ?? false);
    } catch (error) {
      lastError = error;
      if (!String(error).includes("Address already in use")) break;
    }
  }
  throw lastError;
}

interface Identity {
  readonly mailUid: number;
  readonly mailGid: number;
  readonly loginUser: string;
  readonly internalUser: string;
  readonly internalGroup: string;
}

/** As root, mail belongs to `nobody` and Dovecot's own users run the helpers; otherwise all is ours. */
async function chooseIdentity(): Promise<Identity> {
  const me = userInfo();
  const groups = await readFile("/etc/group", "utf8").catch(() => "");
  if (me.uid !== 0) {
    // Rootless Dovecot: every service runs as us and its sockets belong to our own group.
    const ownGroup = groups
      .split("\n")
      .find((line) => line.split(":")[2] === String(me.gid))
      ?.split(":")[0];
    return {
      mailUid: me.uid,
      mailGid: me.gid,
      loginUser: me.username,
      internalUser: me.username,
      internalGroup: ownGroup ?? me.username,
    };
  }
  const passwd = await readFile("/etc/passwd", "utf8");
  const nobody = passwd.split("\n").find((line) => line.startsWith("nobody:"));
  const [, , uid, gid] = nobody?.split(":") ?? [];
  return {
    mailUid: Number(uid ?? 65534),
    mailGid: Number(gid ?? 65534),
    loginUser: hasUser(passwd, "dovenull") ? "dovenull" : "nobody",
    internalUser: hasUser(passwd, "dovecot") ? "dovecot" : "nobody",
    internalGroup: hasUser(groups, "dovecot") ? "dovecot" : "nogroup",
  };
}

/** True if /etc/passwd (or /etc/group) text has an entry called `name`. */
function hasUser(entries: string, name: string): boolean {
  return entries.split("\n").some((line) => line.startsWith(`${name}:`));
}

async function startInFolder(
  users: Readonly<Record<string, string>>,
  lockSession: boolean,
): Promise<DovecotServer> {
  const identity = await chooseIdentity();
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-dovecot-"));
  // Dovecot's unprivileged processes must be able to walk down to the Maildirs.
  await chmod(dir, 0o755);
  const [certificates, plainPort, tlsPort] = await Promise.all([
    createTestCertificates(dir),
    findFreePort(),
    findFreePort(),
  ]);
  const passwdPath = join(dir, "passwd");
  await writeFile(
    passwdPath,
    Object.entries(users)
      .map(([user, password]) => `${user}:{PLAIN}${password}::::::\n`)
      .join(""),
  );
  const maildir = (user: string): string => join(dir, "home", user, "Maildir");
  for (const user of Object.keys(users)) {
    for (const sub of ["tmp", "new", "cur"]) await mkdir(join(maildir(user), sub), { recursive: true });
    await chownTree(join(dir, "home", user), identity);
  }
  const configPath = join(dir, "dovecot.conf");
  await writeFile(
    configPath,
    renderDovecotConfig({
      dir,
      plainPort,
      tlsPort,
      certPath: certificates.serverCertPath,
      keyPath: certificates.serverKeyPath,
      dhPath: existsSync(DEBIAN_DH_PARAMS) ? DEBIAN_DH_PARAMS : undefined,
      passwdPath,
      ...identity,
      lockSession,
      rootless: userInfo().uid !== 0,
    }),
  );

  const watchdog = spawn(
    "/bin/sh",
    ["-c", WATCHDOG_SCRIPT, "dovecot-watchdog", DOVECOT_BIN, configPath, dir],
    {
      stdio: ["pipe", "ignore", "ignore"],
      // Out of the test runner's process group: a Ctrl-C must reach the watchdog only through the pipe.
      detached: true,
    },
  );
  // The watchdog must not keep a test runner or a bench alive; its pipe closing is the signal.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  const exited = new Promise<number | null>((resolve) => watchdog.once("exit", (code) => resolve(code)));
  watchdog.stdin?.on("error", () => {});
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // Held again so that a script awaiting stop() does not exit before the cleanup is done.
      watchdog.ref();
      watchdog.stdin?.end();
      await exited;
      // The reaper removes the folder too, but stop() promises it is gone when it resolves.
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopped;
  };

  try {
    await waitForGreeting(plainPort, exited, dir);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    host: "127.0.0.1",
    plainPort,
    tlsPort,
    caPem: certificates.caPem,
    certSha256: certificates.serverCertSha256,
    certFingerprint256: certificates.serverCertFingerprint256,
    users,
    maildir,
    async deliver(user, messageBytes) {
      const target = maildir(user);
      deliveryCounter += 1;
      const now = Date.now();
      // Maildir unique name: time, then a per-process sequence (cr.yp.to/proto/maildir.html).
      const name = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${deliveryCounter}.pop2gmail`;
      const temporary = join(target, "tmp", name);
      await writeFile(temporary, messageBytes);
      if (userInfo().uid === 0) await chown(temporary, identity.mailUid, identity.mailGid);
      await rename(temporary, join(target, "new", name));
      return name;
    },
    async storedMessageCount(user) {
      const [fresh, current] = await Promise.all([
        readdir(join(maildir(user), "new")),
        readdir(join(maildir(user), "cur")),
      ]);
      return fresh.length + current.length;
    },
    stop,
  };
}

async function chownTree(path: string, identity: Identity): Promise<void> {
  if (userInfo().uid !== 0) return;
  await chown(path, identity.mailUid, identity.mailGid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.isDirectory()) await chownTree(join(path, entry.name), identity);
    else await chown(join(path, entry.name), identity.mailUid, identity.mailGid);
  }
}

/** Resolves once a client on the plaintext port receives `+OK`; fails early if Dovecot exits. */
async function waitForGreeting(port: number, exited: Promise<number | null>, dir: string): Promise<void> {
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) break;
    if (await greets(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const diagnostics = await readDiagnostics(dir);
  throw new Error(
    exitCode !== undefined
      ? `Dovecot exited during startup (code ${exitCode}): ${diagnostics}`
      : `Dovecot did not greet on 127.0.0.1:${port} within ${STARTUP_DEADLINE_MS} ms: ${diagnostics}`,
  );
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = "";
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => finish(false));
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n")) finish(received.startsWith("+OK"));
    });
  });
}

async function readDiagnostics(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ["dovecot.stderr", "dovecot.log"]) {
    try {
      parts.push((await readFile(join(dir, name), "utf8")).slice(-2_000));
    } catch {
      // Not written (yet): the other file may still tell what happened.
    }
  }
  return parts.join("\n") || "(no output)";
}

/** User names and passwords end up in a passwd-file: keep them to characters it can hold. */
function validateUsers(users: Readonly<Record<string, string>>): void {
  for (const [user, password] of Object.entries(users)) {
    if (!/^[A-Za-z0-9._@-]+$/.test(user)) throw new Error(`unusable test user name: ${user}`);
    if (/[:\r\n]/.test(password)) throw new Error(`the password of ${user} holds ':' or a line break`);
  }
}
