import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pop3MailboxSource } from "../../shared/adapters/pop3/pop3-mailbox-source";
import { TimeoutError, TransientError } from "../../shared/core/errors";
import { MapSecretStore } from "../fakes/gmail-sink-fixture";
import { FakeMailSink } from "../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../fakes/in-memory-pop3-source";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { runs, scaledTimeout } from "./support/faults-scale";
import { faultMailbox, PipelineRig, TENANT } from "./support/pipeline-rig";

/** One message arriving: under a UIDL the server reuses (if one is free), sharing or lacking a Message-ID. */
interface Arrival {
  readonly reuseUidl: boolean;
  readonly shareMessageId: boolean;
  readonly withoutMessageId: boolean;
  readonly body: string;
}

/** What happens before one pass: new mail, Gmail failures, a lost ledger. */
interface Step {
  readonly arrivals: readonly Arrival[];
  /** Imports that fail with a 5xx before Gmail stored anything (the outcome looks uncertain). */
  readonly failBefore: number;
  /** Imports Gmail stored and then timed out on (uncertain, and it did happen). */
  readonly failAfter: number;
  readonly loseLedger: boolean;
}

/** One entry of a UIDL listing: a valid UIDL, one an earlier message has too, or one that breaks RFC 1939 §7. */
type ListedId =
  | { readonly kind: "valid" }
  | { readonly kind: "twin"; readonly of: number }
  | { readonly kind: "invalid"; readonly text: string };

const listedId: fc.Arbitrary<ListedId> = fc.oneof(
  { arbitrary: fc.constant({ kind: "valid" as const }), weight: 4 },
  { arbitrary: fc.nat({ max: 11 }).map((of) => ({ kind: "twin" as const, of })), weight: 1 },
  {
    arbitrary: fc
      .oneof(
        // Too long (71 to 5,000 characters), or holding a space or a control character.
        fc.integer({ min: 71, max: 5_000 }).map((n) => "u".repeat(n)),
        fc
          .tuple(fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.constantFrom(" ", "\t", "\u007f", "\u0001"))
          .map(([word, bad]) => `${word}${bad}x`),
      )
      .map((text) => ({ kind: "invalid" as const, text })),
    weight: 1,
  },
);

/** Gmail failures in one history: fewer than the copier's 5 attempts, so none is a poison message. */
const MAX_FAULTS = 3;

const arrival: fc.Arbitrary<Arrival> = fc.record({
  reuseUidl: fc.boolean(),
  shareMessageId: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  withoutMessageId: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  body: fc.string({ maxLength: 120 }).map((text) => text.replace(/[\r\n]/g, " ")),
});

const step: fc.Arbitrary<Step> = fc.record({
  arrivals: fc.array(arrival, { maxLength: 4 }),
  failBefore: fc.integer({ min: 0, max: 2 }),
  failAfter: fc.integer({ min: 0, max: 2 }),
  loseLedger: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
});

/**
 * Issue 10, "widen the hostile tests": the identity classes of issue 10 tried at random against
 * the pipeline core (in-memory ledger, archive, queue, POP3 maildrop and Gmail): messages sharing a
 * Message-ID whose import fails with a 5xx (item 1), messages without one whose import ends
 * uncertain (item 2), new mail under a UIDL the server reuses after our committed DELE (item 3),
 * and the ledger lost between passes (item 6). Whatever the history, once it is over and the
 * pipeline ran to quiet: every message archived byte-exact, in Gmail exactly once, gone from the
 * server, nothing quarantined, and no QUIT ever committed a message not both archived and in Gmail.
 */
describe("message identity under random histories", () => {
  it(
    "delivers every message exactly once through shared Message-IDs, reused UIDLs, uncertain imports and lost ledgers",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (history) => {
          // Prepare
          const pop3 = new InMemoryPop3Source();
          const sink = new FakeMailSink();
          const rig = new PipelineRig(faultMailbox(), pop3, sink);
          const onServer = new Map<string, Buffer>();
          const delivered: Buffer[] = [];
          const messageIds: string[] = [];
          const freeUidls: string[] = [];
          const breaches: string[] = [];
          let faultBudget = MAX_FAULTS;
          pop3.onCommit = (uidls) => {
            for (const uidl of uidls) {
              const bytes = onServer.get(uidl);
              const inGmail = sink.imported.some(
                (m) => bytes !== undefined && Buffer.from(m.bytes).equals(bytes),
              );
              const archived = [...rig.archive.objects.values()].some(
                (o) => bytes !== undefined && Buffer.from(o.bytes).equals(bytes),
              );
              if (!inGmail || !archived)
                breaches.push(`${uidl}: committed while in Gmail=${inGmail}, archived=${archived}`);
              onServer.delete(uidl);
              freeUidls.push(uidl);
            }
          };
          const arrive = (a: Arrival) => {
            const shared = a.shareMessageId && messageIds.length > 0;
            const id = a.withoutMessageId
              ? undefined
              : shared
                ? messageIds[a.body.length % messageIds.length]
                : `<m${delivered.length}@hostile.test>`;
            if (id !== undefined && !shared) messageIds.push(id);
            const bytes = Buffer.from(
              [
                "From: a@example.test",
                "To: b@example.test",
                `Subject: message ${delivered.length}`,
                ...(id === undefined ? [] : [`Message-ID: ${id}`]),
                "",
                a.body,
                "",
              ].join("\r\n"),
            );
            const reuse = a.reuseUidl ? freeUidls.shift() : undefined;
            const uidl = reuse === undefined ? pop3.add(bytes) : pop3.add(bytes, reuse);
            onServer.set(uidl, bytes);
            delivered.push(bytes);
          };

          // Act: the history, one pass a minute, then recovery until the server is empty.
          for (const { arrivals, failBefore, failAfter, loseLedger } of history) {
            for (const a of arrivals) arrive(a);
            if (loseLedger) rig.loseLedger();
            // At most MAX_FAULTS in a whole history: more in a row would rightly quarantine a
            // message as failing (maxAttempts), which is not what this property is about.
            for (let i = 0; i < failBefore && faultBudget > 0; i++, faultBudget--) {
              sink.failNextImport(new TransientError("google", "Gmail answered 503 to the import"));
            }
            for (let i = 0; i < failAfter && faultBudget > 0; i++, faultBudget--) {
              sink.failAfterNextImport(new TimeoutError("google", "the import timed out"));
            }
            await rig.onePass();
            rig.clock.advance(60_000);
          }
          for (let pass = 0; pass < 40 && (pop3.uidls().length > 0 || rig.queue.size > 0); pass++) {
            await rig.onePass();
            // Past the import claim (16 min) and the lister's re-send of stuck jobs (30 min) in a few passes.
            rig.clock.advance(5 * 60_000);
          }

          // Assess
          const quarantined = await rig.ledger.listByState({ tenant: TENANT, mailboxId: rig.mailbox.id }, [
            "quarantined",
          ]);
          const copies = delivered.map(
            (bytes) => sink.imported.filter((m) => Buffer.from(m.bytes).equals(bytes)).length,
          );
          const archived = delivered.map((bytes) =>
            [...rig.archive.objects.values()].some((o) => Buffer.from(o.bytes).equals(bytes)),
          );
          expect(breaches).toEqual([]);
          expect(pop3.uidls(), "still on the server").toEqual([]);
          expect(copies, "copies in Gmail of each message").toEqual(delivered.map(() => 1));
          expect(sink.imported.length).toBe(delivered.length);
          expect(archived, "archived byte-exact").toEqual(delivered.map(() => true));
          expect(quarantined.map((e) => `${e.uidl}: ${e.quarantineCode}`)).toEqual([]);
        }),
        { numRuns: runs(60) },
      );
    },
    scaledTimeout(60_000),
  );

  it(
    "keeps the valid messages flowing past UIDLs that are too long, not printable or listed twice, and loses none",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(listedId, { minLength: 1, maxLength: 12 }), async (ids) => {
          // Prepare: a maildrop whose UIDL listing breaks RFC 1939 §7 here and there (issue 10 item
          // 9), served over the wire to the real POP3 client.
          const messages = ids.map((id, index) => {
            const uidl =
              id.kind === "valid"
                ? `ok-${index}`
                : id.kind === "twin"
                  ? `ok-${Math.max(0, Math.min(index - 1, id.of))}`
                  : id.text;
            const bytes = Buffer.from(
              `From: a@example.test\r\nSubject: listed ${index}\r\nMessage-ID: <l${index}@hostile.test>\r\n\r\nbody ${index}\r\n`,
            );
            return { uidl, bytes, cleanUidl: id.kind === "valid" };
          });
          const server = new ScriptedPop3Server({
            users: { alice: "pop-password" },
            messages: messages.map((m) => m.bytes),
            uidls: messages.map((m) => m.uidl),
          });
          const { port } = await server.start();
          const secrets = new MapSecretStore();
          secrets.set("pop-secret", "pop-password");
          const mailbox = faultMailbox({
            pop3: {
              host: "127.0.0.1",
              port,
              tls: "none",
              allowPlaintext: true,
              user: "alice",
              passwordSecret: "pop-secret",
            },
          });
          const pop3 = new Pop3MailboxSource({ secrets, connectOptions: { commandTimeoutMs: 20_000 } });
          const sink = new FakeMailSink();
          const rig = new PipelineRig(mailbox, pop3, sink);
          const counts = new Map<string, number>();
          for (const m of messages) counts.set(m.uidl, (counts.get(m.uidl) ?? 0) + 1);
          // A valid UIDL no other message shares: the message must be delivered as usual.
          const flows = messages.map((m) => m.cleanUidl && counts.get(m.uidl) === 1);

          // Act
          try {
            for (let pass = 0; pass < 12; pass++) {
              await rig.onePass();
              rig.clock.advance(5 * 60_000);
            }
          } finally {
            await server.stop();
          }

          // Assess
          const left = server.remainingMessages();
          const onServer = messages.map((m) => left.some((b) => b.equals(m.bytes)));
          const copies = messages.map(
            (m) => sink.imported.filter((i) => Buffer.from(i.bytes).equals(m.bytes)).length,
          );
          const archived = messages.map((m) =>
            [...rig.archive.objects.values()].some((o) => Buffer.from(o.bytes).equals(m.bytes)),
          );
          const fates = messages.map((m, i) => ({
            uidl: m.uidl.length > 20 ? `${m.uidl.slice(0, 20)}...(${m.uidl.length})` : m.uidl,
            flows: flows[i],
            onServer: onServer[i],
            copies: copies[i],
            archived: archived[i],
          }));
          // Nothing lost: a message gone from the server is archived and in Gmail.
          expect(fates.filter((f) => !f.onServer && (f.copies !== 1 || !f.archived))).toEqual([]);
          // Never twice in Gmail.
          expect(fates.filter((f) => (f.copies ?? 0) > 1)).toEqual([]);
          // The rest keeps flowing: each message with a valid UIDL of its own is delivered and deleted.
          expect(fates.filter((f) => f.flows && (f.onServer || f.copies !== 1))).toEqual([]);
        }),
        { numRuns: runs(40) },
      );
    },
    scaledTimeout(120_000),
  );
});
