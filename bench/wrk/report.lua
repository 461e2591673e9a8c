-- The summary line both scripts print: `WRKJSON {...}`, read by bench/run.py.
-- `extra` holds more "name": value pairs (already formatted) for the object.

local report = {}

function report.line(summary, latency, extra)
  local points = {}
  for _, p in ipairs({1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99}) do
    table.insert(points, string.format('"%g": %.3f', p, latency:percentile(p) / 1000))
  end
  return string.format(
    'WRKJSON {"requests": %d, "duration_s": %.3f, %s'
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
    .. '"latency_ms": {%s}, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, extra or "",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, table.concat(points, ", "),
    latency.max / 1000)
end

return report
