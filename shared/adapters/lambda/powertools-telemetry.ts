import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import {
  CREDENTIAL_SERVICES,
  type CredentialService,
  METRIC,
  METRIC_DIMENSION,
  METRIC_UNIT,
  type MetricName,
  PIPELINE_LOG_MESSAGE,
} from "../../config/metrics";
import type { PipelineEvent, Telemetry } from "../../ports/telemetry";

/**
 * The core's `Telemetry` port on Powertools: every pipeline event becomes one JSON log line
 * (keys `tenant`, `mailboxId`, `uidl`, `s3Key`, `gmailId` where they apply; never a secret or a
 * body, as events carry neither) and the EMF metrics of `shared/config/metrics.ts`, emitted with
 * exactly the dimension sets the alarms read (`METRIC_DIMENSIONS`).
 *
 * Tenant-level metrics are buffered in `metrics` (default dimension `Tenant`, plus Powertools'
 * `service`) and flushed by the handler at the end of the invocation; `CredentialsBroken`
 * (+`RemoteService`) goes out at once as a single metric, because a flush carries one dimension
 * set. Only events that say something become metrics, and never as a zero (CloudWatch bills a
 * metric per hour it receives data: shared/config/metrics.ts); counts and sizes of ordinary work
 * (listed, archived, imported, deleted, DeliveryDelay) are log fields only.
 */
export class PowertoolsTelemetry implements Telemetry {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Never throws: telemetry must not break the pipeline (see the port). */
  record(event: PipelineEvent): void {
    try {
      this.log(event);
      this.count(event);
    } catch (error) {
      // A broken log or metric line is worth a warning, never a failed message.
      try {
        this.logger.warn("telemetry event could not be recorded", {
          eventType: event.type,
          error: error instanceof Error ? error.message : String(error),
        });
      } catch {
        // Nothing left to report to.
      }
    }
  }

  /**
   * The keeper's once-a-minute `TenantProblems` count, zero included: the one metric emitted
   * whatever happens, so its absence means the keeper is not running (the alarm treats missing
   * data as breaching). Buffered with the rest; the handler's flush publishes it.
   */
  tenantProblems(count: number): void {
    try {
      this.add(METRIC.tenantProblems, Math.max(0, count));
    } catch (error) {
      try {
        this.logger.warn("TenantProblems could not be recorded", {
          error: error instanceof Error ? error.message : String(error),
        });
      } catch {
        // Nothing left to report to.
      }
    }
  }

  /** Publishes the buffered metrics (one EMF line); a no-op when none are buffered. */
  flush(): void {
    if (this.metrics.hasStoredMetrics()) this.metrics.publishStoredMetrics();
  }

  private add(name: MetricName, value: number): void {
    this.metrics.addMetric(name, MetricUnit[METRIC_UNIT[name]], value);
  }

  private count(event: PipelineEvent): void {
    switch (event.type) {
      case "imported":
        // One datapoint per import: its SampleCount is the number of imports.
        this.add(METRIC.pipelineDelay, Math.max(0, event.pipelineDelayMs));
        return;
      case "quarantined":
        this.add(METRIC.messagesQuarantined, 1);
        return;
      case "retry-scheduled":
        if (event.code === "RATE_LIMITED") this.add(METRIC.gmailRateLimited, 1);
        return;
      case "busy":
        this.add(METRIC.mailboxBusy, 1);
        return;
      case "credentials-broken": {
        const single = this.metrics.singleMetric();
        single.addDimension(METRIC_DIMENSION.remoteService, credentialService(event.service));
        single.addMetric(METRIC.credentialsBroken, MetricUnit.Count, 1);
        return;
      }
      // A successful poll is the keeper's business (TenantProblems), not a metric per mailbox.
      case "poll-completed":
      case "listed":
      case "archived":
      case "deleted":
      case "retained":
      case "requeued":
      case "vanished":
      case "delete-uncommitted":
        return;
    }
  }

  private log(event: PipelineEvent): void {
    switch (event.type) {
      case "listed":
        this.logger.info(PIPELINE_LOG_MESSAGE.listed, { ...keys(event), bytes: event.bytes });
        return;
      case "archived":
        this.logger.info(PIPELINE_LOG_MESSAGE.archived, {
          ...keys(event),
          s3Key: event.archiveKey,
          bytes: event.bytes,
          sha256: event.sha256,
        });
        return;
      case "imported":
        this.logger.info(PIPELINE_LOG_MESSAGE.imported, {
          ...keys(event),
          s3Key: event.archiveKey,
          gmailId: event.gmailId,
          bytes: event.bytes,
          pipelineDelayMs: event.pipelineDelayMs,
          ...(event.deliveryDelayMs === undefined ? {} : { deliveryDelayMs: event.deliveryDelayMs }),
          reusedEarlierImport: event.reusedEarlierImport,
        });
        return;
      case "retained":
        this.logger.info("message kept on the server until its delete is due", {
          ...keys(event),
          gmailId: event.gmailId,
          ...(event.deleteDueAt === undefined
            ? {}
            : { deleteDueAt: new Date(event.deleteDueAt).toISOString() }),
        });
        return;
      case "deleted":
        this.logger.info(PIPELINE_LOG_MESSAGE.deleted, {
          ...keys(event),
          ...(event.archiveKey === undefined ? {} : { s3Key: event.archiveKey }),
          ...(event.gmailId === undefined ? {} : { gmailId: event.gmailId }),
        });
        return;
      case "quarantined":
        this.logger.error(PIPELINE_LOG_MESSAGE.quarantined, {
          ...keys(event),
          code: event.code,
          reason: event.reason,
          ...(event.archiveKey === undefined ? {} : { s3Key: event.archiveKey }),
          ...(event.bytes === undefined ? {} : { bytes: event.bytes }),
        });
        return;
      case "retry-scheduled":
        this.logger.warn("copy will be retried", {
          ...keys(event),
          code: event.code,
          attempt: event.attempt,
          retryAfterMs: event.retryAfterMs,
        });
        return;
      case "requeued":
        this.logger.warn("job re-sent: it sat unfinished past the grace period", {
          ...keys(event),
          state: event.state,
        });
        return;
      case "vanished":
        this.logger.warn("message left the POP3 server before it was copied", {
          ...keys(event),
          state: event.state,
        });
        return;
      case "busy":
        this.logger.info("mailbox busy: trying again later", {
          tenant: event.tenant,
          mailboxId: event.mailboxId,
          reason: event.reason,
        });
        return;
      case "credentials-broken":
        this.logger.error("credentials rejected: fix them, nothing is copied until then", {
          tenant: event.tenant,
          mailboxId: event.mailboxId,
          remoteService: event.service,
          code: event.code,
        });
        return;
      case "delete-uncommitted":
        this.logger.warn("QUIT did not commit the DELEs: nothing was deleted", {
          tenant: event.tenant,
          mailboxId: event.mailboxId,
          messages: event.messages,
        });
        return;
      case "poll-completed": {
        const { type: _type, ...fields } = event;
        if (event.idle) this.logger.debug("poll completed", fields);
        else this.logger.info("poll completed", fields);
        return;
      }
    }
  }
}

function keys(event: { tenant: string; mailboxId: string; uidl: string }) {
  return { tenant: event.tenant, mailboxId: event.mailboxId, uidl: event.uidl };
}

/** `RemoteService` takes only the values the alarms know; a secret-store failure is a POP3/Google one upstream. */
function credentialService(service: string): CredentialService {
  return (CREDENTIAL_SERVICES as readonly string[]).includes(service)
    ? (service as CredentialService)
    : "pop3";
}
