import { Duration } from "aws-cdk-lib";

/** 150 MB at a slow provider's ~2 MB/s, twice (POP3 in, Gmail out), plus margin. */
const COPY_TIMEOUT = Duration.minutes(5);

/**
 * Sizing of the three functions, in one place so the stack, the tests and docs/deploy.md's cost
 * formula agree. Durations are upper bounds (timeouts), not what a run costs.
 */
export const FUNCTION_SETTINGS = {
  listNewMessages: {
    folder: "list-new-messages",
    // A poll is one POP3 session (UIDL, LIST) and a few ledger reads: little memory, and an
    // invocation polls once (the poll chains pace the polls, docs/lambda-handlers.md "Sub-minute
    // polling"). For a server with a long LOGIN-DELAY it copies in its one session until its
    // timeout margin is left (docs/pipeline.md "Login delay and UTF8"): the copier's timeout, so
    // such a poll copies what one copier invocation would and the largest message fits as it
    // does in the copier.
    memoryMiB: 256,
    timeout: COPY_TIMEOUT,
  },
  copyMessage: {
    folder: "copy-message",
    // Streams up to 150 MB (Gmail's import limit) POP3 -> S3 -> Gmail without holding the message:
    // S3 multipart parts (5 MiB x a few in flight) and the Gmail upload buffer fit in far less,
    // but Lambda's CPU share grows with memory and TLS + SHA-256 of 150 MB are CPU-bound;
    // 512 MB is the starting point until the bench measures the curve.
    memoryMiB: 512,
    timeout: COPY_TIMEOUT,
  },
  deleteCopied: {
    folder: "delete-copied",
    memoryMiB: 256,
    // One POP3 session with DELE per due message, committed by QUIT (RFC 1939 §6).
    timeout: Duration.minutes(2),
  },
} as const;

/** Work-queue visibility timeout per copy-message timeout; AWS recommends at least 6x. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Receives before a job moves to the dead-letter queue (busy/rate-limited jobs are re-sent, not re-received). */
export const MAX_RECEIVE_COUNT = 5;

/** Copy-message concurrency cap on the SQS event source: protects the POP3 server and Gmail's per-user limits. */
export const COPY_MAX_CONCURRENCY = 5;

/** Copy jobs per invocation. */
export const COPY_BATCH_SIZE = 10;

/**
 * Poll messages per lister invocation: the polls of one batch run at once (different mailboxes;
 * a duplicate is turned away by its chain item), so at many mailboxes a batch saves invocations.
 */
export const POLL_BATCH_SIZE = 10;

/** Log retention in days for the three functions. */
export const LOG_RETENTION_DAYS = 90;

/** Lambda's limit on the total size of a function's environment variables (keys and values). */
export const LAMBDA_ENV_LIMIT_BYTES = 4096;
