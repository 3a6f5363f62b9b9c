import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { byteChunks } from "../../../shared/adapters/gmail/byte-chunks";
import { parseMultipartRelated } from "../../fakes/gmail-multipart";

describe("byteChunks", () => {
  it("regroups any split of any bytes into full chunks and keeps every byte", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 1024 }),
        async (bytes, cuts, chunkBytes) => {
          // Prepare
          async function* pieces() {
            let offset = 0;
            for (let i = 0; offset < bytes.length; i += 1) {
              const size = cuts[i % cuts.length] ?? 1;
              yield bytes.subarray(offset, offset + size);
              offset += size;
            }
          }

          // Act
          const chunks: Buffer[] = [];
          for await (const chunk of byteChunks(pieces(), chunkBytes)) chunks.push(Buffer.from(chunk));

          // Assess
          expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true);
          expect(chunks.slice(0, -1).every((c) => c.length === chunkBytes)).toBe(true);
        },
      ),
    );
  });
});

describe("parseMultipartRelated (stand-in)", () => {
  it("returns the media part byte-exact, even when it holds CRLF, NUL and dashes", () => {
    // Prepare
    const media = Buffer.from([0x2d, 0x2d, 0x0d, 0x0a, 0x00, 0xff, 0x2d, 0x2d, 0x62, 0x0d, 0x0a]);
    const body = Buffer.concat([
      Buffer.from(
        '--b1\r\ncontent-type: application/json\r\n\r\n{"labelIds":["INBOX"]}\r\n--b1\r\ncontent-type: message/rfc822\r\n\r\n',
      ),
      media,
      Buffer.from("\r\n--b1--"),
    ]);

    // Act
    const [metadata, part] = parseMultipartRelated(body, "b1");

    // Assess
    expect(metadata?.body.toString()).toBe('{"labelIds":["INBOX"]}');
    expect(part?.contentType).toBe("message/rfc822");
    expect(part?.body.equals(media)).toBe(true);
  });
});
