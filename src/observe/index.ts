/**
 * src/observe — how the daemon tells the postmaster what it does: structured log lines (pino)
 * with stable tags, written as JSON or as text, and the plain stderr logger libraries fall back
 * on, and the daemon's metrics (prom-client). Imports only src/text and prom-client.
 */

export {
  CHART_PALETTE,
  type ChartOptions,
  type ChartSeries,
  chartColour,
  svgChart,
} from './charts.js';
export { escapeHtml } from './html.js';
export {
  createLogger,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  setLogLevel,
} from './logger.js';
export {
  type CbvEvent,
  DaemonMetrics,
  type DnsQueryOutcome,
  type ListenerGauge,
  labelWord,
  METRIC_CHECKS,
  type MetricCheck,
  type MetricsDoor,
} from './metrics.js';
export { type LineLogger, stderrLogger } from './stderr.js';
export { formatTextRecord, jsonLineToText, type TextFormatOptions } from './text-format.js';
