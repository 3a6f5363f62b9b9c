import { createServer } from "node:net";

/**
 * Asks the kernel for a free TCP port on 127.0.0.1 by listening on port 0 and closing again.
 * Another process may grab the port before the caller binds it; callers that hand the port to a
 * child process retry on EADDRINUSE.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}
