-- W7's measured run (wrk -s): wrk's own GET / on keep-alive connections, with
-- nothing added per request (no request() or response() function, so wrk keeps
-- its fast path). done() prints one JSON line: requests, duration, bytes,
-- latency percentiles in µs, and the socket and status error counts.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
