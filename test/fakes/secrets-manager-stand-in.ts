import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { STAND_IN_REGION } from "./aws-stand-ins";

/** A Secrets Manager request handler speaking the JSON 1.1 protocol (GetSecretValue; PutSecretValue of an existing secret). */
export function secretsManagerHandler(secrets: Map<string, string>) {
  return (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const { SecretId, SecretString } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        SecretId: string;
        SecretString?: string;
      };
      // PutSecretValue (the onboarding handler's write) stores a new value of an existing secret.
      const put = String(request.headers["x-amz-target"]).endsWith(".PutSecretValue");
      if (put && secrets.has(SecretId) && SecretString !== undefined) secrets.set(SecretId, SecretString);
      const value = secrets.get(SecretId);
      response.writeHead(value === undefined ? 400 : 200, { "content-type": "application/x-amz-json-1.1" });
      response.end(
        JSON.stringify(
          value === undefined
            ? {
                __type: "ResourceNotFoundException",
                message: "Secrets Manager can't find the specified secret.",
              }
            : {
                ARN: `arn:aws:secretsmanager:${STAND_IN_REGION}:0:secret:${SecretId}`,
                Name: SecretId,
                SecretString: value,
              },
        ),
      );
    });
  };
}

/** A Secrets Manager on loopback speaking the JSON 1.1 protocol (GetSecretValue; PutSecretValue of an existing secret). */
export async function startSecretsManagerStandIn(): Promise<{
  endpoint: string;
  secrets: Map<string, string>;
  stop(): Promise<void>;
}> {
  const secrets = new Map<string, string>();
  const server = createServer(secretsManagerHandler(secrets));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    secrets,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
