import { createHash } from "node:crypto";

/**
 * A synthesized tenant template "deployed" on paper: every resource gets the physical name and
 * ARN CloudFormation would give it (generated names are made up but shaped like the real ones),
 * and every `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select` and `Fn::Split` in the
 * template is replaced by a concrete string. The IAM proof evaluates policies over these strings,
 * so a statement is judged on the ARN it would name in a real account, not on a token.
 */

/** The account and region every proof stack is "deployed" to: all tenants share one account. */
export const PROOF_ACCOUNT = "111122223333";
export const PROOF_REGION = "eu-west-1";

export interface DeployedResource {
  readonly logicalId: string;
  readonly type: string;
  /** The resource's properties with every intrinsic resolved. */
  readonly properties: Record<string, unknown>;
  /** What `Ref` returns. */
  readonly ref: string;
  /** `Fn::GetAtt` attributes. */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface DeployedStack {
  readonly stackName: string;
  readonly resources: readonly DeployedResource[];
  byType(type: string): DeployedResource[];
  byLogicalId(logicalId: string): DeployedResource;
}

interface RawTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** Resolves `template` (as `Template.toJSON()` returns it) as if deployed as `stackName`. */
export function deployTemplate(stackName: string, template: unknown): DeployedStack {
  const raw = template as RawTemplate;
  const identities = new Map<string, { ref: string; attributes: Record<string, string> }>();
  for (const [logicalId, resource] of Object.entries(raw.Resources)) {
    identities.set(logicalId, identityOf(stackName, logicalId, resource.Type, resource.Properties ?? {}));
  }
  const pseudo: Record<string, string> = {
    "AWS::Partition": "aws",
    "AWS::Region": PROOF_REGION,
    "AWS::AccountId": PROOF_ACCOUNT,
    "AWS::StackName": stackName,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": `arn:aws:cloudformation:${PROOF_REGION}:${PROOF_ACCOUNT}:stack/${stackName}/0`,
  };
  const refOf = (name: string): string => {
    const value = pseudo[name] ?? identities.get(name)?.ref;
    if (value === undefined) throw new Error(`${stackName}: Ref to unknown ${name}`);
    return value;
  };
  const attributeOf = (logicalId: string, attribute: string): string => {
    const value = identities.get(logicalId)?.attributes[attribute];
    if (value === undefined) throw new Error(`${stackName}: no attribute ${logicalId}.${attribute}`);
    return value;
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== "object") return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [[key, argument]] = entries as [[string, unknown]];
      if (key === "Ref") return refOf(String(argument));
      if (key === "Fn::GetAtt") {
        const [logicalId, attribute] = Array.isArray(argument)
          ? (argument as string[])
          : String(argument).split(/\.(.*)/);
        return attributeOf(String(logicalId), String(attribute));
      }
      if (key === "Fn::Join") {
        const [separator, parts] = argument as [string, unknown[]];
        return (resolve(parts) as unknown[]).map(String).join(separator);
      }
      if (key === "Fn::Select") {
        const [index, list] = argument as [number | string, unknown];
        return (resolve(list) as unknown[])[Number(index)];
      }
      if (key === "Fn::Split") {
        const [separator, text] = argument as [string, unknown];
        return String(resolve(text)).split(separator);
      }
      if (key === "Fn::Sub") {
        const [text, variables] = (Array.isArray(argument) ? argument : [argument, {}]) as [
          string,
          Record<string, unknown>,
        ];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (variables[name] !== undefined) return String(resolve(variables[name]));
          const [logicalId, attribute] = name.split(/\.(.*)/);
          return attribute === undefined || attribute === ""
            ? refOf(name)
            : attributeOf(String(logicalId), attribute);
        });
      }
      if (key.startsWith("Fn::")) throw new Error(`${stackName}: intrinsic ${key} is not resolved`);
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
  };
  const resources: DeployedResource[] = Object.entries(raw.Resources).map(([logicalId, resource]) => {
    const identity = identities.get(logicalId)!;
    return {
      logicalId,
      type: resource.Type,
      properties: resolve(resource.Properties ?? {}) as Record<string, unknown>,
      ref: identity.ref,
      attributes: identity.attributes,
    };
  });
  return {
    stackName,
    resources,
    byType: (type) => resources.filter((r) => r.type === type),
    byLogicalId: (logicalId) => {
      const found = resources.find((r) => r.logicalId === logicalId);
      if (found === undefined) throw new Error(`${stackName}: no resource ${logicalId}`);
      return found;
    },
  };
}

/** The physical identity CloudFormation would give a resource (names generated as it does). */
function identityOf(
  stackName: string,
  logicalId: string,
  type: string,
  properties: Record<string, unknown>,
): { ref: string; attributes: Record<string, string> } {
  const suffix = createHash("sha256").update(`${stackName}/${logicalId}`).digest("hex").slice(0, 12);
  const generated = `${stackName}-${logicalId}-${suffix}`;
  const arn = (service: string, resource: string, region = PROOF_REGION, account = PROOF_ACCOUNT) =>
    `arn:aws:${service}:${region}:${account}:${resource}`;
  const literal = (name: string): string | undefined => {
    const value = properties[name];
    return typeof value === "string" ? value : undefined;
  };
  switch (type) {
    case "AWS::KMS::Key": {
      const id = `${suffix.slice(0, 8)}-${suffix.slice(8, 12)}-4000-8000-${suffix}`;
      return { ref: id, attributes: { Arn: arn("kms", `key/${id}`), KeyId: id } };
    }
    case "AWS::S3::Bucket": {
      const name = generated.toLowerCase().slice(0, 63);
      return {
        ref: name,
        attributes: {
          Arn: `arn:aws:s3:::${name}`,
          DomainName: `${name}.s3.amazonaws.com`,
          RegionalDomainName: `${name}.s3.${PROOF_REGION}.amazonaws.com`,
        },
      };
    }
    case "AWS::DynamoDB::Table": {
      const name = literal("TableName") ?? generated;
      return {
        ref: name,
        attributes: {
          Arn: arn("dynamodb", `table/${name}`),
          StreamArn: arn("dynamodb", `table/${name}/stream/x`),
        },
      };
    }
    case "AWS::SQS::Queue": {
      const name = literal("QueueName") ?? generated.slice(0, 80);
      const url = `https://sqs.${PROOF_REGION}.amazonaws.com/${PROOF_ACCOUNT}/${name}`;
      return { ref: url, attributes: { Arn: arn("sqs", name), QueueName: name, QueueUrl: url } };
    }
    case "AWS::SNS::Topic": {
      const name = literal("TopicName") ?? generated;
      return { ref: arn("sns", name), attributes: { TopicArn: arn("sns", name), TopicName: name } };
    }
    case "AWS::Lambda::Function": {
      const name = literal("FunctionName") ?? generated.slice(0, 64);
      return { ref: name, attributes: { Arn: arn("lambda", `function:${name}`) } };
    }
    case "AWS::IAM::Role": {
      const name = literal("RoleName") ?? generated.slice(0, 64);
      return {
        ref: name,
        attributes: {
          Arn: `arn:aws:iam::${PROOF_ACCOUNT}:role/${name}`,
          RoleId: `AROA${suffix.toUpperCase()}`,
        },
      };
    }
    case "AWS::Logs::LogGroup": {
      const name = literal("LogGroupName") ?? generated;
      return { ref: name, attributes: { Arn: arn("logs", `log-group:${name}:*`) } };
    }
    case "AWS::Events::Rule": {
      const name = literal("Name") ?? generated.slice(0, 64);
      return { ref: name, attributes: { Arn: arn("events", `rule/${name}`) } };
    }
    case "AWS::CloudWatch::Alarm": {
      const name = literal("AlarmName") ?? generated;
      return { ref: name, attributes: { Arn: arn("cloudwatch", `alarm:${name}`) } };
    }
    default:
      return { ref: generated, attributes: { Arn: arn("unknown", generated) } };
  }
}
