import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A throwaway CA and a server certificate it signed, as files in a folder and as PEM text. */
export interface TestCertificates {
  readonly caPem: string;
  readonly serverCertPath: string;
  readonly serverKeyPath: string;
  /** SHA-256 of the server certificate's DER bytes, lower-case hex without separators. */
  readonly serverCertSha256: string;
  /** The same fingerprint as Node prints it (`AB:CD:...`), for clients that expect that form. */
  readonly serverCertFingerprint256: string;
}

/** A CA certificate nobody signed anything with: the "wrong CA" of the negative TLS tests. */
export async function createUnrelatedCa(dir: string): Promise<string> {
  const certPath = join(dir, "unrelated-ca.pem");
  await run("openssl", caArgs(join(dir, "unrelated-ca.key"), certPath, "pop2gmail unrelated test CA"));
  return readFile(certPath, "utf8");
}

/**
 * Makes a CA, then a leaf for `127.0.0.1` and `localhost` signed by it, with openssl in `dir`.
 * EC P-256 keys keep this at a few tens of milliseconds; certificates live two days at most.
 */
export async function createTestCertificates(dir: string): Promise<TestCertificates> {
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.pem");
  const serverKeyPath = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const serverCertPath = join(dir, "server.pem");
  const extensions = join(dir, "server.ext");
  await Promise.all([
    run("openssl", caArgs(caKey, caCert, "pop2gmail test CA")),
    run("openssl", [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      serverKeyPath,
      "-out",
      csr,
      "-subj",
      "/CN=localhost",
    ]),
    writeFile(
      extensions,
      [
        "subjectAltName = IP:127.0.0.1, DNS:localhost",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = serverAuth",
        "",
      ].join("\n"),
    ),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caCert,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-days",
    "2",
    "-sha256",
    "-extfile",
    extensions,
    "-out",
    serverCertPath,
  ]);
  const [caPem, serverPem] = await Promise.all([readFile(caCert, "utf8"), readFile(serverCertPath, "utf8")]);
  const fingerprint256 = new X509Certificate(serverPem).fingerprint256;
  return {
    caPem,
    serverCertPath,
    serverKeyPath,
    serverCertSha256: fingerprint256.replaceAll(":", "").toLowerCase(),
    serverCertFingerprint256: fingerprint256,
  };
}

function caArgs(keyPath: string, certPath: string, commonName: string): string[] {
  return [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-sha256",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ];
}
