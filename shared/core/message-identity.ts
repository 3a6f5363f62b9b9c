import { createHash } from "node:crypto";
import type { ContentDigest } from "./model";

/**
 * How a message is named in the ledger (docs/pipeline.md "Message identity").
 *
 * A ledger id is `<base>` for the first generation and `<base> <n>` for generation n >= 2, where
 * `<base>` is the server's UIDL, or `<UIDL> #<size>.<hash>` (a content identity) for a message
 * whose UIDL the server lists more than once. RFC 1939 §7 forbids spaces in a UIDL, so the first
 * space always ends the server's part: the first generation of a well-behaved UIDL is the UIDL
 * itself and ledgers written before generations existed stay valid. A UIDL that breaks §7 (too
 * long, bytes outside 0x21-0x7E) is replaced by `invalidUidlStandIn` before it reaches the core.
 */

/** Hex digits of the SHA-256 kept in a content identity: 64 bits, enough within one UIDL. */
const CONTENT_HASH_DIGITS = 16;
const STAND_IN_PREFIX = "!invalid-uidl!";
const GENERATION = /^[1-9]\d{0,8}$/;
const CONTENT = /^#(\d{1,15})\.([0-9a-f]{16})$/;
/** A UIDL as RFC 1939 §7 allows it. */
const VALID_UIDL = /^[\x21-\x7e]{1,70}$/;
/**
 * A ledger id: a valid UIDL or a stand-in, then maybe a content part, then maybe a generation of
 * 2 or more. Anything else (a UIDL with a space, " 1") is no ledger id.
 */
const LEDGER_ID =
  /^(?:[\x21-\x7e]{1,70}|!invalid-uidl![0-9a-f]{64})(?: #\d{1,15}\.[0-9a-f]{16})?(?: (?:[2-9]|[1-9]\d{1,8}))?$/;

/** True when `uidl` is a unique-id RFC 1939 §7 allows: 1-70 characters 0x21-0x7E. */
export function isValidUidl(uidl: string): boolean {
  return VALID_UIDL.test(uidl);
}

/** True when `id` has the shape of a ledger id (what a copy job may carry). */
export function isLedgerId(id: string): boolean {
  return LEDGER_ID.test(id);
}

/** The ledger id of generation `generation` (1, 2, ...) of a base identity. */
export function ledgerIdFor(base: string, generation = 1): string {
  if (!Number.isSafeInteger(generation) || generation < 1) {
    throw new RangeError(`generation must be a positive integer, got ${generation}`);
  }
  return generation === 1 ? base : `${base} ${generation}`;
}

/** The UIDL the POP3 server lists for the message a ledger id names. */
export function serverUidlOf(ledgerId: string): string {
  const space = ledgerId.indexOf(" ");
  return space === -1 ? ledgerId : ledgerId.slice(0, space);
}

/** The generation a ledger id names (1 when it has no generation suffix). */
export function generationOf(ledgerId: string): number {
  const space = ledgerId.lastIndexOf(" ");
  if (space === -1) return 1;
  const suffix = ledgerId.slice(space + 1);
  return GENERATION.test(suffix) ? Number(suffix) : 1;
}

/** The ledger id without its generation suffix: the identity the lister's snapshot is keyed by. */
export function baseOf(ledgerId: string): string {
  const generation = generationOf(ledgerId);
  return generation === 1 ? ledgerId : ledgerId.slice(0, ledgerId.lastIndexOf(" "));
}

/**
 * The content identity of a message whose UIDL is listed more than once in a session: the UIDL,
 * the size the server announced in LIST and the first 64 bits of the SHA-256 of its bytes.
 */
export function contentIdFor(uidl: string, listedSize: number, sha256: string): string {
  return `${uidl} #${listedSize}.${sha256.slice(0, CONTENT_HASH_DIGITS)}`;
}

/** The LIST size and SHA-256 prefix a content identity names; undefined for any other id. */
export function contentOf(ledgerId: string): { listedSize: number; sha256Prefix: string } | undefined {
  const parts = baseOf(ledgerId).split(" ");
  if (parts.length !== 2) return undefined;
  const match = CONTENT.exec(parts[1] ?? "");
  if (match === null) return undefined;
  return { listedSize: Number(match[1]), sha256Prefix: match[2] ?? "" };
}

/** True when `sha256` (hex) is the content a content identity names. */
export function matchesContent(ledgerId: string, listedSize: number, digest: ContentDigest): boolean {
  const content = contentOf(ledgerId);
  return (
    content !== undefined &&
    content.listedSize === listedSize &&
    digest.sha256.startsWith(content.sha256Prefix)
  );
}

/**
 * What the core calls a message whose UIDL breaks RFC 1939 §7: a fixed prefix and the SHA-256 of
 * the raw id, 78 characters, so it is stable across sessions, bounded whatever the server sent,
 * and never equal to a valid UIDL (those have at most 70 characters).
 */
export function invalidUidlStandIn(rawUidl: Uint8Array): string {
  return `${STAND_IN_PREFIX}${createHash("sha256").update(rawUidl).digest("hex")}`;
}

/** True when a ledger id names a message whose server UIDL breaks RFC 1939 §7. */
export function isInvalidUidlStandIn(ledgerId: string): boolean {
  const uidl = serverUidlOf(ledgerId);
  return uidl.length === STAND_IN_PREFIX.length + 64 && uidl.startsWith(STAND_IN_PREFIX);
}
