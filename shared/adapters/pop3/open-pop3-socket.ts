import { isIP, type Socket, connect as tcpConnect } from "node:net";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { ConnectionClosedError, type Pop2GmailError, TimeoutError, TlsError } from "../../core/errors";

/** What the TLS step needs from the connect options. */
export interface TlsSettings {
  readonly host: string;
  readonly port: number;
  readonly ca?: string | Buffer;
  readonly certificateSha256?: string;
  readonly servername?: string;
}

const TLS_HINT =
  "Check the server's certificate. For a private CA set pop3.caFile to its PEM file; for a self-signed " +
  "certificate set pop3.certificateSha256 to its SHA-256 fingerprint " +
  "(openssl s_client -connect HOST:PORT </dev/null | openssl x509 -noout -fingerprint -sha256).";

/** Socket errors that mean "nobody answered" rather than "the TLS exchange failed". */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** "AB:cd:..." or "abcd..." -> "ABCD...": the form compared against Node's `fingerprint256`. */
export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, "").toUpperCase();
}

/** Opens a plain TCP connection (for "none" and before STLS). */
export function openTcpSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  const socket = tcpConnect({ host, port });
  return settle(socket, "connect", timeoutMs, (error) => networkError(host, port, error));
}

/**
 * Opens TLS, either directly (implicit TLS, RFC 8314 port 995) or over an existing socket after
 * STLS (RFC 2595). Certificates are verified against the system roots or `ca`; with a pinned
 * `certificateSha256` the chain is not checked but the leaf must match the pin exactly.
 */
export async function openTlsSocket(
  settings: TlsSettings,
  timeoutMs: number,
  over?: Socket,
): Promise<TLSSocket> {
  const pin =
    settings.certificateSha256 === undefined ? undefined : normalizeFingerprint(settings.certificateSha256);
  const servername = settings.servername ?? (isIP(settings.host) === 0 ? settings.host : undefined);
  const socket = tlsConnect({
    host: settings.host,
    port: settings.port,
    ...(over === undefined ? {} : { socket: over }),
    ...(servername === undefined ? {} : { servername }),
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
    minVersion: "TLSv1.2",
    rejectUnauthorized: pin === undefined,
  });
  const secure = await settle(socket, "secureConnect", timeoutMs, (error) => {
    const code = "code" in error ? String(error.code) : "";
    if (NETWORK_CODES.has(code)) return networkError(settings.host, settings.port, error);
    return new TlsError(`TLS with ${settings.host}:${settings.port} failed: ${error.message}`, {
      cause: error,
      hint: TLS_HINT,
    });
  });
  if (pin !== undefined) {
    const actual = normalizeFingerprint(secure.getPeerCertificate().fingerprint256 ?? "");
    if (actual !== pin) {
      secure.destroy();
      throw new TlsError(
        `The certificate of ${settings.host}:${settings.port} has SHA-256 ${actual}, not the pinned ${pin}`,
        { hint: TLS_HINT },
      );
    }
  }
  return secure;
}

function networkError(host: string, port: number, error: Error): Pop2GmailError {
  return new ConnectionClosedError("pop3", `Could not talk to ${host}:${port}: ${error.message}`, {
    cause: error,
  });
}

/** Waits for `event`, turning an error, an early close or the timeout into a typed error. */
function settle<T extends Socket>(
  socket: T,
  event: "connect" | "secureConnect",
  timeoutMs: number,
  onError: (error: Error) => Pop2GmailError,
): Promise<T> {
  // Errors after connect are reported by the wire through "close"; this keeps one that lands
  // between connect and the wire's own listener from becoming an uncaught exception.
  socket.on("error", ignore);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      socket.destroy();
      reject(new TimeoutError("pop3", `Connecting took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    const onFailure = (error: Error): void => {
      finish();
      socket.destroy();
      reject(onError(error));
    };
    const onClose = (): void => onFailure(new Error("connection closed during connect"));
    const onReady = (): void => {
      finish();
      resolve(socket);
    };
    const finish = (): void => {
      clearTimeout(timer);
      socket.off("error", onFailure);
      socket.off("close", onClose);
      socket.off(event, onReady);
    };
    socket.once("error", onFailure);
    socket.once("close", onClose);
    socket.once(event, onReady);
  });
}

function ignore(): void {}
