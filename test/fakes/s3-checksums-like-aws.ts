import { createHash } from "node:crypto";
import { S3ServiceException } from "@aws-sdk/client-s3";
import type { InitializeMiddleware, MetadataBearer, MiddlewareStack } from "@smithy/types";

/** Any SDK v3 client: what this needs of it is its middleware stack. */
interface MiddlewareClient<I extends object, O extends MetadataBearer> {
  readonly middlewareStack: MiddlewareStack<I, O>;
}

const NAME = "s3ChecksumsLikeAws";

/**
 * What S3 does with a PutObject that carries `x-amz-checksum-sha256` (the S3 User Guide, "Checking
 * object integrity"), which fauxqs 1.9 ignores: it hashes the bytes it received, refuses the write
 * with 400 `BadDigest` when the hash differs (nothing stored), and otherwise answers with the
 * checksum it stored. Played in the client's middleware, in front of fauxqs: the test's S3 then
 * checks a single-part write as S3 does. `corruptNextPut` changes one byte of the next body after
 * its checksum was taken, as a damaged transfer would.
 */
export function s3ChecksumsLikeAws<I extends object, O extends MetadataBearer>(
  client: MiddlewareClient<I, O>,
): { corruptNextPut(): void; detach(): void } {
  let corrupt = false;
  const middleware: InitializeMiddleware<I, O> = (next, context) => async (args) => {
    const input = args.input as { ChecksumSHA256?: string; Body?: unknown };
    if (context.commandName !== "PutObjectCommand" || input.ChecksumSHA256 === undefined) return next(args);
    if (!(input.Body instanceof Uint8Array)) throw new Error("s3ChecksumsLikeAws: a body that is not bytes");
    let received = input.Body;
    if (corrupt) {
      corrupt = false;
      received = Buffer.from(received);
      received[0] = (received[0] ?? 0) ^ 0xff;
      args = { ...args, input: { ...args.input, Body: received } };
    }
    if (createHash("sha256").update(received).digest("base64") !== input.ChecksumSHA256) {
      throw new S3ServiceException({
        name: "BadDigest",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
        message: "The SHA256 you specified did not match the calculated checksum.",
      });
    }
    const result = await next(args);
    (result.output as { ChecksumSHA256?: string }).ChecksumSHA256 = input.ChecksumSHA256;
    return result;
  };
  client.middlewareStack.add(middleware, { step: "initialize", name: NAME, override: true });
  return {
    corruptNextPut: () => {
      corrupt = true;
    },
    detach: () => void client.middlewareStack.remove(NAME),
  };
}
