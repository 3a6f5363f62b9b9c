import { Metrics } from "@aws-lambda-powertools/metrics";
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../shared/config/metrics";

/** Metrics that buffer like the real ones but print nothing (POWERTOOLS_METRICS_DISABLED while built). */
export function quietMetrics(): Metrics {
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  try {
    return new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE_NAME });
  } finally {
    if (saved === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = saved;
  }
}
