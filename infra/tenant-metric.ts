import { Duration } from "aws-cdk-lib";
import { Metric } from "aws-cdk-lib/aws-cloudwatch";
import {
  METRIC_DIMENSION,
  METRIC_DIMENSIONS,
  METRIC_NAMESPACE,
  METRIC_SERVICE_NAME,
  type MetricName,
} from "../shared/config/metrics";

/**
 * A pipeline metric of one tenant with exactly the dimension set the handlers emit it with
 * (`METRIC_DIMENSIONS`): CloudWatch matches dimension sets exactly, so a missing or extra
 * dimension here would make a dashboard line empty and an alarm blind.
 */
export function tenantMetric(
  tenant: string,
  name: MetricName,
  options: {
    statistic?: string;
    period?: Duration;
    label?: string;
    extra?: Readonly<Record<string, string>>;
  } = {},
): Metric {
  const dimensionsMap: Record<string, string> = {
    [METRIC_DIMENSION.service]: METRIC_SERVICE_NAME,
    [METRIC_DIMENSION.tenant]: tenant,
    ...options.extra,
  };
  const expected = [...METRIC_DIMENSIONS[name]].sort();
  const given = Object.keys(dimensionsMap).sort();
  if (expected.join() !== given.join()) {
    throw new Error(`${name} is emitted with dimensions [${expected.join(", ")}], not [${given.join(", ")}]`);
  }
  return new Metric({
    namespace: METRIC_NAMESPACE,
    metricName: name,
    dimensionsMap,
    statistic: options.statistic ?? "Sum",
    period: options.period ?? Duration.minutes(5),
    ...(options.label === undefined ? {} : { label: options.label }),
  });
}
