/**
 * src/observe — how the daemon tells the postmaster what it does: structured log lines (pino)
 * with stable tags, written as JSON or as text, and the plain stderr logger libraries fall back
 * on, the daemon's metrics (prom-client), and the decision log's readers: the report and the
 * SVG charts it shares with the status page. Imports only src/text, prom-client and the store's
 * types.
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
  MetricCell,
  type MetricCheck,
  type MetricsDoor,
  type StoreOperationCells,
} from './metrics.js';
export {
  buildReport,
  type DecisionReport,
  type ReportOptions,
  renderHtml,
  renderJson,
  renderText,
} from './report.js';
export { type LineLogger, stderrLogger } from './stderr.js';
export { formatTextRecord, jsonLineToText } from './text-format.js';
