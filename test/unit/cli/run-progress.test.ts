import { describe, expect, it } from "vitest";
import { ProgressDisplay, RunProgress } from "../../../cli/runtime/run-progress";
import { parseLocalConfig } from "../../../shared/config/local-config";
import type { PipelineEvent } from "../../../shared/ports/telemetry";

/** Progress of `run` over a backlog (docs/pipeline.md, "Progress"). */
function config(mailboxes: { id: string; user: string }[], quotaUnitsPerMinute = 6000) {
  return parseLocalConfig(
    {
      tenant: "acme",
      google: { quotaUnitsPerMinute },
      local: { dataDir: "/tmp/unused" },
      mailboxes: mailboxes.map((m) => ({
        id: m.id,
        pop3: { host: "pop.example.net", user: "u", passwordSecret: "p" },
        gmail: { user: m.user, credentialsSecret: "g" },
      })),
    },
    "/tmp",
  );
}

function event(type: "listed" | "imported" | "quarantined", mailboxId: string, uidl: string): PipelineEvent {
  const base = { tenant: "acme", mailboxId, uidl };
  if (type === "listed") return { ...base, type, bytes: 10, listedAt: 0 };
  if (type === "quarantined") return { ...base, type, code: "X", reason: "x" };
  return {
    ...base,
    type,
    archiveKey: "k",
    gmailId: "g",
    bytes: 10,
    pipelineDelayMs: 1,
    reusedEarlierImport: false,
  };
}

class FakeStream {
  text = "";
  constructor(readonly isTTY: boolean) {}
  readonly columns = 120;
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

describe("run progress", () => {
  it("counts done out of total per mailbox, with the rate over the last minute", () => {
    // Prepare
    let now = 1_000_000;
    const progress = new RunProgress(config([{ id: "info@acme.it", user: "a@gmail.com" }]), () => now);
    progress.setWaiting("info@acme.it", 10);
    for (let i = 0; i < 90; i++) progress.record(event("listed", "info@acme.it", `u${i}`));

    // Act
    for (let i = 0; i < 40; i++) {
      now += 250;
      progress.record(event("imported", "info@acme.it", `u${i}`));
    }
    const [row] = progress.snapshot();

    // Assess: 40 of 100 at 4/s; 60 left at 4/s is 15 s.
    expect(row).toMatchObject({ mailboxId: "info@acme.it", done: 40, total: 100 });
    expect(row?.ratePerSecond).toBeCloseTo(4, 0);
    expect(row?.etaSeconds).toBeCloseTo(15, 0);
  });

  it("gives an ETA no shorter than the Gmail user's quota allows for every mailbox that shares it", () => {
    // Prepare: two mailboxes into one Gmail user at 6,000 units/min (4 imports/s together).
    const now = 1_000_000;
    const progress = new RunProgress(
      config([
        { id: "info@acme.it", user: "Owner@gmail.com" },
        { id: "sales@acme.it", user: "owner@gmail.com" },
      ]),
      () => now,
    );

    // Act
    progress.setWaiting("info@acme.it", 2000);
    progress.setWaiting("sales@acme.it", 2000);
    const rows = progress.snapshot();

    // Assess: 4,000 messages at 4/s is 1,000 s, whichever mailbox goes first.
    expect(rows.map((r) => r.etaSeconds)).toEqual([1000, 1000]);
  });

  it("draws one line per mailbox on a TTY and redraws in place", () => {
    // Prepare
    const progress = new RunProgress(config([{ id: "info@acme.it", user: "a@gmail.com" }]));
    progress.setWaiting("info@acme.it", 5);
    const tty = new FakeStream(true);
    const display = new ProgressDisplay(progress, tty);

    // Act
    display.draw();
    progress.record(event("imported", "info@acme.it", "u1"));
    display.draw();

    // Assess
    expect(tty.text).toContain("info@acme.it [");
    expect(tty.text).toContain("0/5");
    expect(tty.text).toContain("\u001b[1F\u001b[J");
    expect(tty.text).toContain("1/5");
  });

  it("writes plain lines, without control characters, when not on a TTY, and nothing when idle", () => {
    // Prepare
    const progress = new RunProgress(config([{ id: "info@acme.it", user: "a@gmail.com" }]));
    const plain = new FakeStream(false);
    const display = new ProgressDisplay(progress, plain);

    // Act
    display.draw();
    const idle = plain.text;
    progress.setWaiting("info@acme.it", 3);
    display.draw();

    // Assess
    expect(idle).toBe("");
    expect(plain.text).toMatch(/^progress: info@acme.it 0\/3 0\.0\/s ETA 1s\n$/);
    expect(plain.text).not.toContain("\u001b");
  });
});
