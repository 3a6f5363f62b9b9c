import type { PipelineEvent, PipelineEventType, Telemetry } from "../../shared/ports/telemetry";

/** Keeps every event so tests can assert what the core reported. */
export class RecordingTelemetry implements Telemetry {
  readonly events: PipelineEvent[] = [];

  record(event: PipelineEvent): void {
    this.events.push(event);
  }

  ofType<T extends PipelineEventType>(type: T): Extract<PipelineEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<PipelineEvent, { type: T }> => e.type === type);
  }
}
