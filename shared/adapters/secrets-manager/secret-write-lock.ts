import { randomUUID } from "node:crypto";
import { TransientError } from "../../core/errors";
import type { SessionLeases } from "../../ports/session-leases";

/**
 * Serializes the writers of one shared secret. Secrets Manager has no conditional write (a
 * PutSecretValue replaces the whole value), so two mailboxes onboarding at once into the tenant's
 * one secret would each read, add their key and write, and the later write would drop the
 * other's key. Holding this lock across the read-modify-write makes them take turns
 * (docs/onboarding.md, "One secret per tenant").
 */
export interface SecretWriteLock {
  /** Runs `write` while no other holder of this lock writes `secret`. */
  run<T>(secret: string, write: () => Promise<T>): Promise<T>;
}

/** Serializes writes within this process only: the default of a writer given no shared lock. */
export function inProcessSecretWriteLock(): SecretWriteLock {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run(secret, write) {
      const result = (tails.get(secret) ?? Promise.resolve()).then(write);
      const tail = result.catch(() => undefined);
      tails.set(secret, tail);
      void tail.then(() => {
        if (tails.get(secret) === tail) tails.delete(secret);
      });
      return result;
    },
  };
}

/** How a lease-backed lock waits. */
export interface LeaseSecretWriteLockOptions {
  readonly leases: SessionLeases;
  readonly tenant: string;
  /**
   * How long a lease lasts if its holder dies before releasing it. Default 50 s: longer than the
   * onboarding function's 45 s timeout (infra/constructs/onboarding-url.ts), so a holder that stalls
   * is stopped by Lambda before another writer can take its lease; a read and a write take well
   * under a second, so only a crashed holder ever makes the others wait that long.
   */
  readonly leaseMs?: number;
  /** Attempts to take the lease before giving up (default 50). */
  readonly attempts?: number;
  /** Waits between attempts; default a timer of 100-300 ms. Injected so a test need not wait. */
  readonly pause?: () => Promise<void>;
}

/** The ledger key of a secret's write lease: never a mailbox (mailbox ids have no ':'). */
export function secretLeaseMailboxId(secret: string): string {
  return `secret:${secret}`;
}

/**
 * A lock across Lambda containers: one lease item per secret in the tenant's ledger table (the
 * session-lease conditional put, `SessionLeases.acquire` with one slot), released when the write
 * is done and expiring on its own if the holder dies. A writer that cannot take it within its
 * attempts fails retryable (the person clicks again) instead of writing unserialized.
 */
export function leaseSecretWriteLock(options: LeaseSecretWriteLockOptions): SecretWriteLock {
  const leaseMs = options.leaseMs ?? 50_000;
  const attempts = options.attempts ?? 50;
  const pause =
    options.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, 100 + Math.random() * 200)));
  return {
    async run(secret, write) {
      const key = { tenant: options.tenant, mailboxId: secretLeaseMailboxId(secret) };
      const holder = randomUUID();
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const lease = await options.leases.acquire(key, 1, holder, leaseMs);
        if (lease !== undefined) {
          try {
            return await write();
          } finally {
            // A failed release must not turn a written secret into an error: the lease expires.
            await options.leases.release(key, lease).catch(() => undefined);
          }
        }
        if (attempt < attempts) await pause();
      }
      throw new TransientError("secrets", `secret ${secret} is being written by another request`, {
        hint: "Try again in a few seconds.",
      });
    },
  };
}
