import type { MessageKey } from "./model";

/**
 * The archive object key for a message: deterministic from tenant, mailbox and UIDL so a retry
 * overwrites the same object instead of creating a second one. UIDLs may hold any printable
 * ASCII (RFC 1939 §7), so they are percent-encoded to stay a single safe path segment.
 */
export function archiveKeyFor(key: MessageKey): string {
  return `${key.tenant}/${encodeSegment(key.mailboxId)}/${encodeSegment(key.uidl)}.eml`;
}

function encodeSegment(value: string): string {
  // encodeURIComponent leaves ! ' ( ) * unescaped; "." and ".." must not be a whole segment.
  const encoded = encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return encoded === "." || encoded === ".." ? encoded.replace(/\./g, "%2E") : encoded;
}
