import { runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import { type DeployedResource, type DeployedStack, PROOF_ACCOUNT } from "./deployed-stack";

/**
 * One AWS account holding the "deployed" tenant stacks, and a real policy evaluator
 * (`@cloud-copilot/iam-simulate`) answering "would AWS allow this request?" from the policies
 * the templates create: the calling role's identity policies, and the resource's policy (KMS key
 * policy, SNS topic policy, SQS queue policy, S3 bucket policy, Lambda permissions). Same-account
 * rules apply: for a role, an Allow in either suffices unless the resource is a KMS key, whose key
 * policy must allow (itself or by delegating to the account); for a service principal only the
 * resource policy counts.
 */

export type Decision = "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied";

/** One authorization request, as IAM sees it. */
export interface IamRequest {
  /** A role ARN, or a service principal such as `cloudwatch.amazonaws.com`. */
  readonly principal: string;
  /** The IAM action (`sqs:SendMessage`, not the API name `SendMessageBatch`). */
  readonly action: string;
  readonly resource: string;
  /** Request context keys (`aws:SourceArn`, `kms:EncryptionContext:...`, resource tags). */
  readonly context?: Readonly<Record<string, string | string[]>>;
}

/** The pipeline functions by their folder name; the construct ids are the stack's. */
export const FUNCTION_IDS = {
  "list-new-messages": "ListNewMessages",
  "copy-message": "CopyMessage",
  "delete-copied": "DeleteCopied",
} as const;

export type FunctionName = keyof typeof FUNCTION_IDS;

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: Record<string, unknown>[];
}

export class ProofAccount {
  /**
   * @param otherRoles identity policies of roles outside the stacks (an administrator, the
   *   break-glass role), by role ARN.
   */
  constructor(
    readonly stacks: readonly DeployedStack[],
    private readonly otherRoles: Readonly<Record<string, readonly PolicyDocument[]>> = {},
  ) {}

  stack(tenant: string): DeployedStack {
    const found = this.stacks.find((s) => s.stackName === `Pop2Gmail-${tenant}`);
    if (found === undefined) throw new Error(`no stack for tenant ${tenant}`);
    return found;
  }

  /** The Lambda function resource of `fn` in the tenant's stack. */
  functionOf(tenant: string, fn: FunctionName): DeployedResource {
    const prefix = `${FUNCTION_IDS[fn]}Function`;
    const found = this.stack(tenant)
      .byType("AWS::Lambda::Function")
      .find((r) => r.logicalId.startsWith(prefix));
    if (found === undefined) throw new Error(`${tenant}: no function ${fn}`);
    return found;
  }

  /** The execution role ARN of `fn`. */
  roleOf(tenant: string, fn: FunctionName): string {
    return String(this.functionOf(tenant, fn).properties.Role);
  }

  private readonly decisions = new Map<string, Promise<Decision>>();

  /** Distinct requests evaluated so far (the same request is evaluated once). */
  get distinctRequests(): number {
    return this.decisions.size;
  }

  /** Evaluates one request; a request the evaluator cannot parse fails loudly instead of "denied". */
  evaluate(request: IamRequest): Promise<Decision> {
    const key = JSON.stringify([request.principal, request.action, request.resource, request.context ?? {}]);
    let decision = this.decisions.get(key);
    if (decision === undefined) {
      decision = this.simulate(request);
      this.decisions.set(key, decision);
    }
    return decision;
  }

  private async simulate(request: IamRequest): Promise<Decision> {
    const isRole = request.principal.startsWith("arn:");
    const simulation: Simulation = {
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId: PROOF_ACCOUNT },
        contextVariables: {
          "aws:SecureTransport": "true",
          ...(isRole ? { "aws:PrincipalArn": request.principal, "aws:PrincipalAccount": PROOF_ACCOUNT } : {}),
          ...request.context,
        },
      },
      identityPolicies: isRole ? this.identityPolicies(request.principal) : [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...this.resourcePolicyFor(request.resource),
    };
    const result = await runSimulation(simulation, {});
    if (result.resultType === "error") {
      throw new Error(
        `the evaluator rejected ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`,
      );
    }
    return result.overallResult as Decision;
  }

  /** The role's inline policies (AWS::IAM::Policy resources naming it, and the role's own). */
  private identityPolicies(roleArn: string): { name: string; policy: PolicyDocument }[] {
    const policies: { name: string; policy: PolicyDocument }[] = (this.otherRoles[roleArn] ?? []).map(
      (policy, index) => ({ name: `other-${index}`, policy }),
    );
    for (const stack of this.stacks) {
      const role = stack.byType("AWS::IAM::Role").find((r) => r.attributes.Arn === roleArn);
      if (role === undefined) continue;
      for (const [index, inline] of (
        (role.properties.Policies ?? []) as { PolicyDocument: PolicyDocument }[]
      ).entries()) {
        policies.push({ name: `${role.logicalId}-inline-${index}`, policy: inline.PolicyDocument });
      }
      for (const policy of stack.byType("AWS::IAM::Policy")) {
        if (((policy.properties.Roles ?? []) as string[]).includes(role.ref)) {
          policies.push({
            name: policy.logicalId,
            policy: policy.properties.PolicyDocument as PolicyDocument,
          });
        }
      }
    }
    return policies;
  }

  /** The resource-based policy that governs `arn`, if the stacks create one. */
  private resourcePolicyFor(arn: string): { resourcePolicy?: PolicyDocument } {
    const [, , service] = arn.split(":");
    for (const stack of this.stacks) {
      const policy = resourcePolicyIn(stack, service ?? "", arn);
      if (policy !== undefined) return { resourcePolicy: policy };
    }
    return {};
  }
}

function resourcePolicyIn(stack: DeployedStack, service: string, arn: string): PolicyDocument | undefined {
  switch (service) {
    case "kms": {
      const key = stack.byType("AWS::KMS::Key").find((k) => k.attributes.Arn === arn);
      return key?.properties.KeyPolicy as PolicyDocument | undefined;
    }
    case "sns":
      return statementsOf(
        stack
          .byType("AWS::SNS::TopicPolicy")
          .filter((p) => (p.properties.Topics as string[]).includes(arn))
          .map((p) => p.properties.PolicyDocument as PolicyDocument),
      );
    case "sqs": {
      const queue = stack.byType("AWS::SQS::Queue").find((q) => q.attributes.Arn === arn);
      if (queue === undefined) return undefined;
      return statementsOf(
        stack
          .byType("AWS::SQS::QueuePolicy")
          .filter((p) => (p.properties.Queues as string[]).includes(queue.ref))
          .map((p) => p.properties.PolicyDocument as PolicyDocument),
      );
    }
    case "s3": {
      const bucketName = arn.slice("arn:aws:s3:::".length).split("/")[0];
      return statementsOf(
        stack
          .byType("AWS::S3::BucketPolicy")
          .filter((p) => p.properties.Bucket === bucketName)
          .map((p) => p.properties.PolicyDocument as PolicyDocument),
      );
    }
    case "lambda": {
      const fn = stack
        .byType("AWS::Lambda::Function")
        .find((f) => arn === f.attributes.Arn || arn.startsWith(`${f.attributes.Arn}:`));
      if (fn === undefined) return undefined;
      const statements = stack
        .byType("AWS::Lambda::Permission")
        .filter(
          (p) => p.properties.FunctionName === fn.attributes.Arn || p.properties.FunctionName === fn.ref,
        )
        .map((p) => lambdaPermissionStatement(p, fn.attributes.Arn ?? ""));
      return statements.length === 0 ? undefined : { Version: "2012-10-17", Statement: statements };
    }
    default:
      return undefined;
  }
}

/** An `AWS::Lambda::Permission` as the statement Lambda adds to the function's policy. */
function lambdaPermissionStatement(
  permission: DeployedResource,
  functionArn: string,
): Record<string, unknown> {
  const { Principal, Action, SourceArn, SourceAccount } = permission.properties as Record<string, string>;
  const principal = String(Principal);
  const condition: Record<string, Record<string, string>> = {};
  if (SourceArn !== undefined) condition.ArnLike = { "aws:SourceArn": SourceArn };
  if (SourceAccount !== undefined) condition.StringEquals = { "aws:SourceAccount": SourceAccount };
  return {
    Sid: permission.logicalId,
    Effect: "Allow",
    Principal: principal.endsWith(".amazonaws.com") ? { Service: principal } : { AWS: principal },
    Action: Action,
    Resource: functionArn,
    ...(Object.keys(condition).length === 0 ? {} : { Condition: condition }),
  };
}

function statementsOf(documents: PolicyDocument[]): PolicyDocument | undefined {
  if (documents.length === 0) return undefined;
  return { Version: "2012-10-17", Statement: documents.flatMap((d) => d.Statement) };
}
