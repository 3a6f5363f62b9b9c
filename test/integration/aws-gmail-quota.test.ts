import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbQuotaBucket } from "../../shared/adapters/dynamodb/dynamodb-quota-bucket";
import {
  GmailRateLimiters,
  type RateLimitSettings,
} from "../../shared/adapters/gmail/gmail-user-rate-limiter";
import { type DynaliteStandIn, startDynaliteStandIn, uniqueName } from "../fakes/aws-stand-ins";
import { TestClock } from "../fakes/in-memory-clock";

let dynalite: DynaliteStandIn;
let tableName: string;

beforeAll(async () => {
  dynalite = await startDynaliteStandIn();
  tableName = uniqueName("ledger");
  await createLedgerTable(dynalite.dynamodb, tableName);
});

afterAll(async () => {
  await dynalite?.stop();
});

const USER = "Owner.Acme@gmail.example";
/** 6,000 units/min: one import (25 units) every 250 ms. */
const SETTINGS: RateLimitSettings = { unitsPerMinute: 6000, maxConcurrent: 10 };

/** The limiters of one copier container, as copy-message builds them (docs/lambda-handlers.md). */
function container(clock: TestClock, tenant = "acme"): GmailRateLimiters {
  return new GmailRateLimiters(SETTINGS, clock, (user, settings, capacity) =>
    DynamoDbQuotaBucket.forUser(
      { client: dynalite.dynamodb, tableName, tenant, clock },
      user,
      settings,
      capacity,
    ),
  );
}

describe("Gmail pacing shared by every copier container (DynamoDB token bucket per Gmail user)", () => {
  it("paces two containers' imports for one Gmail user as one budget", async () => {
    // Prepare: two containers on one clock (the same wall time), importing in turn.
    const clock = new TestClock();
    const [a, b] = [container(clock), container(clock)];
    const starts: number[] = [];
    const importAt = () => async () => {
      starts.push(clock.now());
    };

    // Act
    for (let i = 0; i < 4; i++) {
      await a.forUser(USER).run(25, importAt());
      await b.forUser(USER.toLowerCase()).run(25, importAt());
    }

    // Assess: one import per 250 ms across both, never two at once.
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? 0));
    expect(gaps.every((gap) => gap >= 250 && gap <= 260)).toBe(true);
  });

  it("keeps the budgets of two Gmail users and of two tenants apart", async () => {
    // Prepare
    const clock = new TestClock();
    const start = clock.now();

    // Act
    await container(clock)
      .forUser("one@gmail.example")
      .run(25, async () => {});
    await container(clock)
      .forUser("two@gmail.example")
      .run(25, async () => {});
    await container(clock, "other")
      .forUser("one@gmail.example")
      .run(25, async () => {});

    // Assess
    expect(clock.now()).toBe(start);
  });

  it("makes a Retry-After that one container hears hold the other back too", async () => {
    // Prepare
    const clock = new TestClock();
    const [a, b] = [container(clock), container(clock)];
    const start = clock.now();

    // Act
    await a.forUser(USER).pause(10_000);
    let startedAt = 0;
    await b.forUser(USER).run(25, async () => {
      startedAt = clock.now();
    });

    // Assess
    expect(startedAt).toBeGreaterThanOrEqual(start + 10_000);
  });
});
