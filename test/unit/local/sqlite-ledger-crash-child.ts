// A child process for test/unit/local/sqlite-ledger-group-commit.test.ts: it lists `count`
// entries, then asks for `count` transitions at once (one group) and kills itself with SIGKILL
// inside the group's transaction, before its COMMIT ("before-commit"), after the COMMIT but
// before the fsync of the log ("after-commit"), or right after that fsync returned, before any
// caller heard back ("after-sync"). Usage:
//   node --import tsx sqlite-ledger-crash-child.ts <ledger path> <before-commit|after-commit|after-sync> <count>
import { SqliteLedger } from "../../../shared/adapters/local/sqlite-ledger";

const [path, mode, countText] = process.argv.slice(2);
const hooks = {
  "before-commit": "beforeCommit",
  "after-commit": "afterCommit",
  "after-sync": "afterSync",
} as const;
if (path === undefined || !(mode !== undefined && mode in hooks)) {
  process.stderr.write(
    "usage: sqlite-ledger-crash-child.ts <path> <before-commit|after-commit|after-sync> <count>\n",
  );
  process.exit(2);
}
const count = Number(countText ?? "20");
let armed = false;
const die = (): void => {
  if (armed) process.kill(process.pid, "SIGKILL");
};
const ledger = new SqliteLedger({
  path,
  [hooks[mode as keyof typeof hooks]]: die,
});
const keys = Array.from({ length: count }, (_, i) => ({
  tenant: "acme",
  mailboxId: `box-${i % 5}@acme.example`,
  uidl: `u${i}`,
}));
await ledger.createListed(keys.map((key) => ({ ...key, listedSize: 10, listedAt: 1 })));
process.stdout.write("listed\n");
armed = true;
await Promise.all(keys.map((key) => ledger.transition(key, ["listed"], "importing", { importStartedAt: 2 })));
// Never reached: the hook killed the process.
process.stdout.write("survived\n");
