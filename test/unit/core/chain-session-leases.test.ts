import { describeChainSessionLeasesContract } from "../../contract/chain-session-leases-contract";
import { InMemoryPollChains } from "../../fakes/in-memory-poll-chains";
import { InMemorySessionLeases } from "../../fakes/in-memory-session-leases";

// The DynamoDB side runs in test/integration/aws-poll-chains.test.ts.
describeChainSessionLeasesContract("in memory", (now) => {
  const leases = new InMemorySessionLeases({ now, sleep: async () => {} });
  return { chains: new InMemoryPollChains(), leases, slots: leases };
});
