/** One part of a multipart/related body. */
export interface MultipartPart {
  readonly contentType: string;
  readonly body: Buffer;
}

/**
 * Parses a multipart/related body as Google's upload endpoint does, byte-exact: the media part
 * may hold any bytes (NUL, 8-bit, CRLF), so parts are located by the delimiter, never decoded.
 */
export function parseMultipartRelated(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const closing = Buffer.from(`\r\n--${boundary}--`);
  const end = body.lastIndexOf(closing);
  if (!body.subarray(0, delimiter.length).equals(delimiter) || end < 0) {
    throw new Error("malformed multipart body");
  }
  const separator = Buffer.from(`\r\n--${boundary}\r\n`);
  const parts: MultipartPart[] = [];
  let cursor = delimiter.length + 2;
  while (cursor < end) {
    const headerEnd = body.indexOf("\r\n\r\n", cursor);
    if (headerEnd < 0 || headerEnd > end) throw new Error("malformed multipart part headers");
    const headers = body.subarray(cursor, headerEnd).toString("latin1");
    const contentType =
      /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim() ?? "application/octet-stream";
    const start = headerEnd + 4;
    // The media part is last: it runs to the closing delimiter, whatever bytes it holds.
    const next = parts.length === 0 ? body.indexOf(separator, start) : -1;
    const stop = next >= 0 && next < end ? next : end;
    parts.push({ contentType, body: body.subarray(start, stop) });
    cursor = stop === end ? end : stop + separator.length;
  }
  return parts;
}
