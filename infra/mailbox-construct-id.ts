import { createHash } from "node:crypto";

/**
 * The construct id of a per-mailbox resource: `<prefix>-<10 hex digits of SHA-256(mailbox id)>`.
 * Derived from the mailbox id, not its position in the list, so reordering, adding or removing
 * mailboxes never moves a named resource (an alarm name, a schedule's target) to another logical
 * id: CloudFormation would otherwise try to create the renamed alarm before deleting the old one
 * and fail on the duplicate name.
 */
export function mailboxConstructId(prefix: string, mailboxId: string): string {
  return `${prefix}-${createHash("sha256").update(mailboxId).digest("hex").slice(0, 10)}`;
}
