import type { ArchiveMetadata } from "../../ports/archive-store";

/**
 * S3 user metadata travels as `x-amz-meta-*` HTTP headers and must be US-ASCII. A Message-ID may
 * hold UTF-8 (RFC 6532) and a UIDL anything printable, so any value that is not plain printable
 * ASCII, or that HTTP would trim (leading/trailing blanks), is stored as an RFC 2047 encoded-word
 * (`=?UTF-8?B?...?=`), the same form S3 itself returns for non-ASCII metadata.
 */
export function encodeMetadataValue(value: string): string {
  const plain = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !value.startsWith("=?");
  return plain ? value : `=?UTF-8?B?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/** Reverses `encodeMetadataValue`; values that are not one encoded-word are returned as they are. */
export function decodeMetadataValue(value: string): string {
  const match = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i.exec(value);
  return match?.[1] === undefined ? value : Buffer.from(match[1], "base64").toString("utf8");
}

/** The metadata keys written on every archived object (lower-case: S3 lower-cases them anyway). */
export const METADATA_KEYS = {
  tenant: "tenant",
  mailboxId: "mailbox",
  uidl: "uidl",
  messageId: "message-id",
  sha256: "sha256",
  size: "size",
} as const;

// S3 refuses more than 2 KB of user metadata (MetadataTooLarge); a hostile Message-ID must not
// make a message unarchivable, so it is cut to fit. The ledger keeps the full value.
const MAX_MESSAGE_ID_CHARS = 1024;

/** Encodes `value`, dropping trailing characters until the encoded form fits `maxChars`. */
function encodeBounded(value: string, maxChars: number): string {
  let characters = [...value];
  let encoded = encodeMetadataValue(value);
  while (encoded.length > maxChars && characters.length > 0) {
    characters = characters.slice(0, Math.floor(characters.length * 0.9));
    encoded = encodeMetadataValue(characters.join(""));
  }
  return encoded;
}

/** Builds the object's user metadata; `sha256` and `size` only once the bytes are known. */
export function objectMetadata(
  metadata: ArchiveMetadata,
  digest?: { size: number; sha256: string },
): Record<string, string> {
  const result: Record<string, string> = {
    [METADATA_KEYS.tenant]: encodeMetadataValue(metadata.tenant),
    [METADATA_KEYS.mailboxId]: encodeMetadataValue(metadata.mailboxId),
    [METADATA_KEYS.uidl]: encodeMetadataValue(metadata.uidl),
  };
  if (metadata.messageIdHeader !== undefined && metadata.messageIdHeader !== "") {
    result[METADATA_KEYS.messageId] = encodeBounded(metadata.messageIdHeader, MAX_MESSAGE_ID_CHARS);
  }
  if (digest !== undefined) {
    result[METADATA_KEYS.sha256] = digest.sha256;
    result[METADATA_KEYS.size] = String(digest.size);
  }
  return result;
}
