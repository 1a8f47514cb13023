/** A snapshot of the static server's counters (what `/metrics` exposes). */
export interface ServerMetricsSnapshot {
  /** Completed responses by HTTP status (including ones cut short by the client). */
  requests: Record<string, number>;
  /** Body bytes handed to sockets (file bodies, error bodies, /health, /metrics). */
  bytesSent: number;
  /** Requests received and not yet finished or aborted. */
  inFlight: number;
  /** Open TCP connections. */
  connections: number;
  /** Responses the client abandoned before the body was complete. */
  aborted: number;
}

/** Counters behind `/metrics`; plain numbers, no label cardinality beyond status codes. */
export class ServerMetrics {
  private readonly byStatus = new Map<number, number>();
  bytesSent = 0;
  inFlight = 0;
  connections = 0;
  aborted = 0;

  countResponse(status: number, aborted: boolean): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (aborted) this.aborted++;
  }

  snapshot(): ServerMetricsSnapshot {
    const requests: Record<string, number> = {};
    for (const [status, n] of [...this.byStatus].sort((a, b) => a[0] - b[0])) requests[String(status)] = n;
    return { requests, bytesSent: this.bytesSent, inFlight: this.inFlight, connections: this.connections, aborted: this.aborted };
  }

  /** Prometheus text exposition format 0.0.4. */
  toPrometheus(): string {
    const s = this.snapshot();
    const lines = [
      '# HELP swpkg_http_requests_total HTTP responses by status code.',
      '# TYPE swpkg_http_requests_total counter',
      ...Object.entries(s.requests).map(([code, n]) => `swpkg_http_requests_total{code="${code}"} ${n}`),
      '# HELP swpkg_http_response_body_bytes_total Response body bytes sent.',
      '# TYPE swpkg_http_response_body_bytes_total counter',
      `swpkg_http_response_body_bytes_total ${s.bytesSent}`,
      '# HELP swpkg_http_requests_in_flight Requests being served now.',
      '# TYPE swpkg_http_requests_in_flight gauge',
      `swpkg_http_requests_in_flight ${s.inFlight}`,
      '# HELP swpkg_http_connections Open client connections.',
      '# TYPE swpkg_http_connections gauge',
      `swpkg_http_connections ${s.connections}`,
      '# HELP swpkg_http_responses_aborted_total Responses the client abandoned before completion.',
      '# TYPE swpkg_http_responses_aborted_total counter',
      `swpkg_http_responses_aborted_total ${s.aborted}`,
    ];
    return lines.join('\n') + '\n';
  }
}
