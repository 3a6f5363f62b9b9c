import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/**
 * Runs a Debian POP3 server that was only unpacked (`scripts/setup.sh` puts it in `.servers/`,
 * because the packages conflict with dovecot-pop3d) without touching the machine's own files.
 * Every server runs in a private mount namespace (`unshare -m`, so root is needed) whose /etc,
 * /run, /var and /usr/lib are overlays: the server sees its own passwd, shadow, group, PAM
 * configuration, mail spool and plug-in folders, written into a temp folder; the real ones are
 * never changed, and everything goes when the folder does (docs/pop3-servers.md).
 */
export const SERVERS_DIR = resolve(
  process.env.POP2GMAIL_SERVERS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", ".servers"),
);
const run = promisify(execFile);
const STARTUP_DEADLINE_MS = 15_000;
/** Top-level folders the namespace overlays (their writable layers live in the temp folder). */
const OVERLAID = ["etc", "run", "var", "usr/lib"] as const;

/** A real server on 127.0.0.1, as the conformance suite drives it. */
export interface RealPop3Server {
  readonly name: string;
  /** Debian package version of the server binary. */
  readonly version: string;
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly users: Readonly<Record<string, string>>;
  /** Stores a message in the user's mailbox the way the server's own delivery would. */
  deliver(user: string, message: Buffer): Promise<void>;
  /** Kills the server's processes and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** One mail user of a contained server: uid/gid 40100+ so they never match a real account. */
export interface ContainedUser {
  readonly name: string;
  readonly password: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** The temp folder of one contained server. */
export interface ContainedRoot {
  readonly dir: string;
  readonly users: readonly ContainedUser[];
  /** Path inside the namespace's writable layer of `top` (e.g. `upper("etc")` -> /etc). */
  upper(top: (typeof OVERLAID)[number]): string;
  /** Shell lines that mount the overlays; the first lines of every namespace script. */
  readonly mountScript: string;
}

/** Fails with what to run when the unpacked package is missing. */
export function serverFile(packageName: string, path: string): string {
  const full = join(SERVERS_DIR, packageName, path);
  if (!existsSync(full)) {
    throw new Error(`${full} is missing: run \`npm run setup\` (it unpacks ${packageName} into .servers/).`);
  }
  return full;
}

/** The unpacked package's Debian version, as `scripts/setup.sh` wrote it. */
export async function packageVersion(packageName: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return (await readFile(join(SERVERS_DIR, packageName, "VERSION"), "utf8").catch(() => "unknown")).trim();
}

/**
 * Makes the temp folder: overlay layers with passwd/shadow/group holding `system` accounts and
 * the mail users (SHA-512 crypt passwords for pam_unix), and a PAM file per `pamServices`.
 */
export async function prepareRoot(
  label: string,
  users: Readonly<Record<string, string>>,
  options: {
    system?: readonly { name: string; uid: number; gid: number }[];
    pamServices?: readonly string[];
  },
): Promise<ContainedRoot> {
  if (process.getuid?.() !== 0) throw new Error(`${label} runs in a mount namespace, which needs root`);
  const dir = await mkdtemp(join(tmpdir(), `pop2gmail-${label}-`));
  await chmod(dir, 0o755);
  const upper = (top: string) => join(dir, "layers", top.replace("/", "-"), "upper");
  for (const top of OVERLAID) {
    await mkdir(upper(top), { recursive: true });
    await mkdir(join(dir, "layers", top.replace("/", "-"), "work"), { recursive: true });
  }
  const contained: ContainedUser[] = [];
  let next = 40_100;
  for (const [name, password] of Object.entries(users)) {
    const home = join(dir, "home", name);
    await mkdir(home, { recursive: true });
    contained.push({ name, password, uid: next, gid: next, home });
    await chown(home, next, next);
    next += 1;
  }
  const system = [{ name: "root", uid: 0, gid: 0 }, ...(options.system ?? [])];
  const hashes = await Promise.all(contained.map((user) => cryptPassword(user.password)));
  const etc = upper("etc");
  await writeFile(
    join(etc, "passwd"),
    [
      ...system.map((a) => `${a.name}:x:${a.uid}:${a.gid}::/nonexistent:/usr/sbin/nologin`),
      ...contained.map((u) => `${u.name}:x:${u.uid}:${u.gid}::${u.home}:/usr/sbin/nologin`),
      "",
    ].join("\n"),
  );
  await writeFile(
    join(etc, "shadow"),
    [
      ...system.map((a) => `${a.name}:*:20000:0:99999:7:::`),
      ...contained.map((u, index) => `${u.name}:${hashes[index]}:20000:0:99999:7:::`),
      "",
    ].join("\n"),
    { mode: 0o640 },
  );
  const groups = new Map<number, string>([[0, "root"]]);
  for (const account of [...system, ...contained])
    if (!groups.has(account.gid)) groups.set(account.gid, account.name);
  await writeFile(
    join(etc, "group"),
    `${[...groups].map(([gid, name]) => `${name}:x:${gid}:`).join("\n")}\n`,
  );
  await mkdir(join(etc, "pam.d"), { recursive: true });
  for (const service of options.pamServices ?? []) {
    await writeFile(
      join(etc, "pam.d", service),
      "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\n",
    );
  }
  const mountScript = OVERLAID.map((top) => {
    const layer = join(dir, "layers", top.replace("/", "-"));
    return `mount -t overlay overlay -o lowerdir=/${top},upperdir=${layer}/upper,workdir=${layer}/work /${top} || exit 97`;
  }).join("\n");
  return { dir, users: contained, upper: (top) => upper(top), mountScript };
}

async function cryptPassword(password: string): Promise<string> {
  // Test passwords only: on the command line of a short-lived openssl is fine.
  const { stdout } = await run("openssl", ["passwd", "-6", password]);
  return stdout.trim();
}

/** Runs `script` (after the overlay mounts) in a private mount namespace. */
export function spawnInNamespace(
  root: ContainedRoot,
  script: string,
  stdio: ("ignore" | "pipe" | Socket)[] = ["pipe", "ignore", "ignore"],
  env: NodeJS.ProcessEnv = {},
): ChildProcess {
  return spawn(
    "unshare",
    ["--mount", "--propagation", "private", "/bin/sh", "-c", `${root.mountScript}\n${script}`],
    { stdio, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env } },
  );
}

/**
 * A long-running server: the namespace script runs under a watchdog that kills the whole process
 * group when our stdin pipe closes (on `stop()`, or when the test process dies), as
 * test/fakes/dovecot.ts does.
 */
export function startDaemon(
  root: ContainedRoot,
  script: string,
  env: NodeJS.ProcessEnv = {},
): () => Promise<void> {
  const watchdog = [
    "exec 3<&0",
    `setsid unshare --mount --propagation private /bin/sh -c "$1" </dev/null >>"${root.dir}/server.log" 2>&1 3<&- &`,
    "pid=$!",
    '( read -r _ <&3; kill -KILL "-$pid" 2>/dev/null ) &',
    'wait "$pid"',
  ].join("\n");
  const child = spawn("/bin/sh", ["-c", watchdog, "watchdog", `${root.mountScript}\n${script}`], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
  });
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on("error", () => {});
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= (async () => {
      child.ref();
      child.stdin?.end();
      await exited;
      await rm(root.dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopped;
  };
}

/**
 * inetd for servers that speak POP3 on stdin/stdout (popa3d): one namespace and one server
 * process per connection, the accepted socket as its stdin and stdout.
 */
export async function startInetd(
  root: ContainedRoot,
  script: string,
): Promise<{ port: number; stop: () => Promise<void> }> {
  const children = new Set<ChildProcess>();
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    const child = spawnInNamespace(root, script, [socket, socket, "ignore"]);
    children.add(child);
    child.once("exit", () => children.delete(child));
    // The child has its own copy of the socket; ours would only hold the connection open.
    socket.destroy();
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  let stopped: Promise<void> | undefined;
  return {
    port: address.port,
    stop: () => {
      stopped ??= (async () => {
        for (const child of children) child.kill("SIGKILL");
        await new Promise<void>((done) => server.close(() => done()));
        await rm(root.dir, { recursive: true, force: true, maxRetries: 3 });
      })();
      return stopped;
    },
  };
}

/** Resolves once a client on `port` receives `+OK`; fails after 15 s. */
export async function waitForGreeting(port: number, label: string, logFile?: string): Promise<void> {
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (await greets(port)) return;
    await new Promise((done) => setTimeout(done, 50));
  }
  const { readFile } = await import("node:fs/promises");
  const log = logFile === undefined ? "" : await readFile(logFile, "utf8").catch(() => "");
  throw new Error(`${label} did not greet on 127.0.0.1:${port}: ${log.slice(-2_000)}`);
}

function greets(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = "";
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(2_000, () => finish(false));
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n")) {
        socket.write("QUIT\r\n");
        finish(received.startsWith("+OK"));
      }
    });
  });
}

/** Maildir delivery (cr.yp.to/proto/maildir.html): LF line ends, tmp/ then rename into new/. */
let deliveries = 0;
export async function deliverToMaildir(
  maildir: string,
  owner: ContainedUser,
  message: Buffer,
): Promise<void> {
  const { rename } = await import("node:fs/promises");
  await makeMaildir(maildir, owner);
  deliveries += 1;
  const name = `${Math.floor(Date.now() / 1000)}.P${process.pid}Q${deliveries}.pop2gmail`;
  const temporary = join(maildir, "tmp", name);
  await writeFile(temporary, crlfToLf(message), { mode: 0o600 });
  await chown(temporary, owner.uid, owner.gid);
  await rename(temporary, join(maildir, "new", name));
}

/** An empty Maildir (tmp/, new/, cur/) owned by the mail user. */
export async function makeMaildir(maildir: string, owner: ContainedUser): Promise<void> {
  for (const sub of ["tmp", "new", "cur"]) {
    await mkdir(join(maildir, sub), { recursive: true });
    await chown(join(maildir, sub), owner.uid, owner.gid);
  }
  await chown(maildir, owner.uid, owner.gid);
}

/** Mail stores keep LF line ends; the server turns them into CRLF when it serves them. */
export function crlfToLf(message: Buffer): Buffer {
  return Buffer.from(message.toString("latin1").replaceAll("\r\n", "\n"), "latin1");
}

/** Finds the user or fails with the known names. */
export function userOf(root: ContainedRoot, name: string): ContainedUser {
  const user = root.users.find((candidate) => candidate.name === name);
  if (user === undefined) throw new Error(`no test user ${name}`);
  return user;
}
