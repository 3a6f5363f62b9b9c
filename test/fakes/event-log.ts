import type { PipelineEvent, PipelineEventType, Telemetry } from "../../shared/ports/telemetry";

/**
 * Keeps every pipeline event, tells `timeline` of it if given, then passes it on to `next` (the
 * Powertools telemetry the handlers use).
 */
export class EventLog implements Telemetry {
  readonly events: PipelineEvent[] = [];
  constructor(
    private readonly next: Telemetry,
    private readonly timeline?: (event: PipelineEvent) => void,
  ) {}
  record(event: PipelineEvent): void {
    this.events.push(event);
    this.timeline?.(event);
    this.next.record(event);
  }
  ofType<T extends PipelineEventType>(type: T): Extract<PipelineEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<PipelineEvent, { type: T }> => e.type === type);
  }
}
