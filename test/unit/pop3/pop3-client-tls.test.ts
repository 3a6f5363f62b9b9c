import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Pop3Client, type Pop3ConnectOptions } from "../../../shared/adapters/pop3/pop3-client";
import { TlsError } from "../../../shared/core/errors";
import { ScriptedPop3Server } from "../../fakes/scripted-pop3-server";
import { collect, makeMessage, rejection } from "./pop3-test-support";

interface TestPki {
  readonly caPem: string;
  readonly otherCaPem: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly serverFingerprint: string;
}

/** A throw-away CA and a server certificate for 127.0.0.1 and localhost, made with openssl. */
function makePki(directory: string): TestPki {
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: directory, stdio: "ignore" });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const name of ["ca", "other-ca"]) {
    run(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
  }
  run("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(
    join(directory, "server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  );
  const read = (name: string): string => readFileSync(join(directory, name), "utf8");
  const serverCert = read("server.pem");
  return {
    caPem: read("ca.pem"),
    otherCaPem: read("other-ca.pem"),
    serverKey: read("server.key"),
    serverCert,
    serverFingerprint: new X509Certificate(serverCert).fingerprint256,
  };
}

const MESSAGE = makeMessage("over tls", [".dot", "caf\u00e9"]);
let directory: string;
let pki: TestPki;
let server: ScriptedPop3Server | undefined;
let client: Pop3Client | undefined;

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "pop3-tls-"));
  pki = makePki(directory);
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));
afterEach(async () => {
  client?.destroy();
  client = undefined;
  await server?.stop();
  server = undefined;
});

async function startTlsServer(mode: "implicit" | "starttls" | "none"): Promise<number> {
  server = new ScriptedPop3Server({
    users: { alice: "s3cret!" },
    messages: [MESSAGE],
    ...(mode === "none" ? {} : { tls: { key: pki.serverKey, cert: pki.serverCert, mode } }),
  });
  return (await server.start()).port;
}

async function connectAndRead(options: Pop3ConnectOptions): Promise<Buffer> {
  client = await Pop3Client.connect({ commandTimeoutMs: 5_000, ...options });
  await client.login("alice", "s3cret!");
  return collect(client.retrieve(1));
}

describe("Pop3Client over TLS", () => {
  it.each(["implicit", "starttls"] as const)(
    "reads a message over %s TLS with a private CA",
    async (mode) => {
      // Prepare
      const port = await startTlsServer(mode);
      // Act
      const received = await connectAndRead({ host: "127.0.0.1", port, tls: mode, ca: pki.caPem });
      // Assess
      expect(received.equals(MESSAGE)).toBe(true);
    },
  );

  it("verifies the host name against the certificate (localhost)", async () => {
    // Prepare
    const port = await startTlsServer("implicit");
    // Act
    const received = await connectAndRead({ host: "localhost", port, tls: "implicit", ca: pki.caPem });
    // Assess
    expect(received.equals(MESSAGE)).toBe(true);
  });

  it.each(["implicit", "starttls"] as const)(
    "throws TlsError naming caFile/certificateSha256 for an unknown CA (%s)",
    async (mode) => {
      // Prepare
      const port = await startTlsServer(mode);
      // Act
      const error = await rejection(
        Pop3Client.connect({ host: "127.0.0.1", port, tls: mode, ca: pki.otherCaPem }),
      );
      // Assess
      expect(error).toBeInstanceOf(TlsError);
      expect((error as TlsError).hint).toContain("caFile");
      expect((error as TlsError).hint).toContain("certificateSha256");
    },
  );

  it("accepts a certificate that matches the pinned SHA-256 (colons or not, any case)", async () => {
    // Prepare
    const port = await startTlsServer("implicit");
    const pin = pki.serverFingerprint.replace(/:/g, "").toLowerCase();
    // Act
    const received = await connectAndRead({
      host: "127.0.0.1",
      port,
      tls: "implicit",
      certificateSha256: pin,
    });
    // Assess
    expect(received.equals(MESSAGE)).toBe(true);
  });

  it("rejects a certificate that does not match the pin", async () => {
    // Prepare
    const port = await startTlsServer("starttls");
    const wrongPin = `${"AB:".repeat(31)}AB`;
    // Act
    const error = await rejection(
      Pop3Client.connect({ host: "127.0.0.1", port, tls: "starttls", certificateSha256: wrongPin }),
    );
    // Assess
    expect(error).toBeInstanceOf(TlsError);
    expect((error as Error).message).toContain(pki.serverFingerprint.replace(/:/g, ""));
  });

  it("throws TlsError when the server does not offer STLS", async () => {
    // Prepare
    const port = await startTlsServer("none");
    // Act
    const error = await rejection(
      Pop3Client.connect({ host: "127.0.0.1", port, tls: "starttls", ca: pki.caPem }),
    );
    // Assess
    expect(error).toBeInstanceOf(TlsError);
  });

  it("throws TlsError when implicit TLS meets a plaintext server", async () => {
    // Prepare
    const port = await startTlsServer("none");
    // Act
    const error = await rejection(
      Pop3Client.connect({
        host: "127.0.0.1",
        port,
        tls: "implicit",
        ca: pki.caPem,
        commandTimeoutMs: 5_000,
      }),
    );
    // Assess
    expect(error).toBeInstanceOf(TlsError);
  });
});
