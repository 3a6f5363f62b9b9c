import type { MessageKey } from "./model";

/**
 * The archive object key for a message: deterministic from tenant, mailbox and UIDL so a retry
 * overwrites the same object instead of creating a second one. UIDLs may hold any printable
 * ASCII (RFC 1939 §7), so they are percent-encoded to stay a single safe path segment.
 * `laterLife` (the entry's `listedAt`) names the key of a message whose first key already holds
 * an object an earlier life of the ledger id left there, so that object is never overwritten.
 */
export function archiveKeyFor(key: MessageKey, laterLife?: number): string {
  // "@" is always percent-encoded in a segment, so a later life's key (`<uidl>@<listedAt>.eml`)
  // can never be the first key of another UIDL (docs/pipeline.md, "A lost ledger").
  const life = laterLife === undefined ? "" : `@${laterLife}`;
  return `${key.tenant}/${encodeSegment(key.mailboxId)}/${encodeSegment(key.uidl)}${life}.eml`;
}

function encodeSegment(value: string): string {
  // encodeURIComponent leaves ! ' ( ) * unescaped; "." and ".." must not be a whole segment.
  const encoded = encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return encoded === "." || encoded === ".." ? encoded.replace(/\./g, "%2E") : encoded;
}
