import {
  type BaseClients,
  type BasePipelineDeps,
  createLambdaBase,
  type FunctionDeps,
  functionDeps,
  type LambdaBaseOverrides,
} from "./lambda-base";

/** delete-copied needs the base ports only: the ledger, its leases, POP3, clock and telemetry. */
export type DeletePipelineDeps = BasePipelineDeps;

/** What the delete-copied handler uses. */
export type DeleteCopiedDeps = FunctionDeps<DeletePipelineDeps, BaseClients>;

export type DeleteCopiedOverrides = LambdaBaseOverrides<DeletePipelineDeps>;

/**
 * The dependencies of delete-copied: the shared base (`createLambdaBase`) and nothing else (no
 * S3, no Gmail, no queue). Called once per container at module load; nothing here does I/O.
 */
export function createDeleteCopiedDeps(
  env: NodeJS.ProcessEnv,
  overrides: DeleteCopiedOverrides = {},
): DeleteCopiedDeps {
  const base = createLambdaBase(env, overrides);
  return functionDeps(base, base.pipeline, base.clients, overrides.decorate);
}
