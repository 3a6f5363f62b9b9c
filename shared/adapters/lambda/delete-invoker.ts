import type { LambdaClient } from "@aws-sdk/client-lambda";
import { mapAwsError } from "../aws/map-aws-error";

/** The event of the delete-copied function: one mailbox, optionally only these UIDLs. */
export interface DeleteCopiedEvent {
  readonly mailboxId: string;
  readonly uidls?: readonly string[];
}

/** Starts a delete pass without waiting for it (the lister must not hold its minute for DELEs). */
export interface DeleteInvoker {
  invoke(event: DeleteCopiedEvent): Promise<void>;
}

/**
 * Invokes the delete-copied function asynchronously (`InvocationType: Event`): Lambda queues the
 * event and answers 202 at once. A lost or failed invocation costs nothing but time: the next
 * poll reports the same deletes as due and starts another pass.
 *
 * The SDK's Lambda client is loaded on the first invoke, not at module load: most polls start no
 * delete pass, and loading it costs the lister's cold start ~100 ms (bench/README.md). `client`
 * may therefore be a function that builds it on first use.
 */
export class LambdaDeleteInvoker implements DeleteInvoker {
  constructor(
    private readonly client: LambdaClient | (() => Promise<LambdaClient>),
    private readonly functionName: string,
  ) {}

  async invoke(event: DeleteCopiedEvent): Promise<void> {
    const { InvokeCommand } = await import("@aws-sdk/client-lambda");
    const client = typeof this.client === "function" ? await this.client() : this.client;
    try {
      await client.send(
        new InvokeCommand({
          FunctionName: this.functionName,
          InvocationType: "Event",
          Payload: new TextEncoder().encode(JSON.stringify(event)),
        }),
      );
    } catch (error) {
      throw mapAwsError(error, {
        service: "queue",
        action: "lambda:InvokeFunction",
        resource: this.functionName,
      });
    }
  }
}
