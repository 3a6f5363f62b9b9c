import type { MailboxConfig } from "../config/tenant-config";

/**
 * The default hard bound of a RETR: 512 MiB, above what any mail system accepts (Gmail and most
 * hosts stop at 150 MB or less). Only a server that announces more than this in LIST reaches it.
 */
export const DEFAULT_ARCHIVE_MAX_BYTES = 512 * 1024 * 1024;

/**
 * How many bytes one RETR may read before the client stops reading, drops the connection and
 * the message is quarantined unarchived (docs/pipeline.md, "Quarantine policy"): the message's
 * LIST size when that is above `maxMessageBytes` (it is archived whole, then quarantined), else
 * `maxMessageBytes`; never more than `archiveMaxBytes`. So a server that announces a small message
 * and streams on is cut off at `maxMessageBytes`, not after gigabytes.
 */
export function retrieveBound(
  mailbox: Pick<MailboxConfig, "maxMessageBytes">,
  listedSize: number,
  archiveMaxBytes: number,
): number {
  return Math.min(archiveMaxBytes, Math.max(mailbox.maxMessageBytes, listedSize));
}
