import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import type { IKey } from "aws-cdk-lib/aws-kms";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type IBucket,
  type LifecycleRule,
  ObjectLockRetention,
  ObjectOwnership,
  StorageClass,
} from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";

/** Days S3 keeps server access logs of the archive bucket. */
const ACCESS_LOG_RETENTION_DAYS = 365;

/**
 * Days a replaced or deleted version of an archived object is kept. Every large (multipart)
 * message leaves one at once: its metadata is set by an in-place copy after the upload. Long
 * enough to undo a mistaken overwrite; short enough not to double the archive's cost.
 */
export const NONCURRENT_VERSION_DAYS = 30;

/**
 * The tenant's archive: the raw bytes of every message, as the POP3 server served them.
 * Versioned, SSE-KMS with the tenant key, never public, TLS only, access-logged, retained on
 * stack delete; optional Object Lock (compliance mode) for customers with a legal hold duty.
 */
export class ArchiveBucket extends Construct {
  readonly bucket: Bucket;
  readonly accessLogBucket: Bucket;

  constructor(scope: Construct, id: string, props: { archive: TenantConfig["archive"]; key: IKey }) {
    super(scope, id);
    const { archive } = props;
    this.accessLogBucket = new Bucket(this, "AccessLogs", {
      // S3 server access logging delivers only to SSE-S3 buckets, not SSE-KMS ones.
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ id: "ExpireAccessLogs", expiration: Duration.days(ACCESS_LOG_RETENTION_DAYS) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.accessLogBucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "This bucket holds the archive bucket's server access logs; logging it too would need a third bucket with the same question.",
    });

    this.bucket = new Bucket(this, "Archive", {
      encryption: BucketEncryption.KMS,
      encryptionKey: props.key,
      // One data key per bucket instead of one KMS call per object: KMS cost stays flat.
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      // The cast only bridges aws-cdk-lib's `isWebsite` typing under exactOptionalPropertyTypes.
      serverAccessLogsBucket: this.accessLogBucket as IBucket,
      serverAccessLogsPrefix: "archive/",
      lifecycleRules: archiveLifecycle(archive),
      // Object Lock can only be switched on when the bucket is created.
      ...(archive.objectLockDays === undefined
        ? {}
        : {
            objectLockEnabled: true as const,
            objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(archive.objectLockDays)),
          }),
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

/**
 * Lifecycle of archived messages: infrequent access after `infrequentAccessAfterDays` (S3 does
 * not move objects under 128 KB, most messages, unless a size filter says so: their IA minimum
 * charge would exceed what they save), optional expiry, noncurrent versions always expiring
 * after `NONCURRENT_VERSION_DAYS`, and clean-up of abandoned multipart uploads.
 */
export function archiveLifecycle(archive: TenantConfig["archive"]): LifecycleRule[] {
  const { infrequentAccessAfterDays, expireAfterDays } = archive;
  if (expireAfterDays !== undefined && expireAfterDays <= infrequentAccessAfterDays) {
    // S3 rejects a lifecycle whose expiration is not after its transition; say so at synth time.
    throw new ConfigError(
      "archive.expireAfterDays",
      `archive.expireAfterDays (${expireAfterDays}) must be greater than archive.infrequentAccessAfterDays (${infrequentAccessAfterDays})`,
    );
  }
  const transitionAfter = Duration.days(infrequentAccessAfterDays);
  return [
    {
      id: "ArchiveStorageClass",
      transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter }],
      // Expiring a current version also leaves a noncurrent one: this removes those too.
      noncurrentVersionExpiration: Duration.days(NONCURRENT_VERSION_DAYS),
      ...(expireAfterDays === undefined ? {} : { expiration: Duration.days(expireAfterDays) }),
    },
    { id: "AbortIncompleteUploads", abortIncompleteMultipartUploadAfter: Duration.days(7) },
  ];
}
