/**
 * Regroups a byte stream into chunks of exactly `chunkBytes` (the last may be shorter). One
 * buffer is reused for every chunk, so memory stays at one chunk whatever the message size: a
 * yielded chunk is valid only until the consumer asks for the next one.
 */
export async function* byteChunks(
  source: AsyncIterable<Uint8Array>,
  chunkBytes: number,
): AsyncGenerator<Buffer> {
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let filled = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.byteLength) {
      const take = Math.min(chunkBytes - filled, piece.byteLength - offset);
      chunk.set(piece.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === chunkBytes) {
        yield chunk;
        filled = 0;
      }
    }
  }
  if (filled > 0) yield chunk.subarray(0, filled);
}
