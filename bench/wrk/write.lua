-- Payments as a checkout makes them: createPaymentIntent, then
-- confirmPaymentIntent(CARD, tok_visa) for the id it answered. wrk keeps Lua state
-- per thread, not per connection, so created ids go into a queue that the next
-- request on any connection confirms. Counts confirmations that came back SUCCEEDED
-- (payments) and every other answer (failures).

local create = '{"query":"mutation { createPaymentIntent(input: {amount: \\"500.00\\"}) { paymentIntent { id } errors { code } } }"}'
local confirm = '{"query":"mutation($id: ID!) { confirmPaymentIntent(input: {id: $id, method: CARD, card: {token: \\"tok_visa\\"}}) { paymentIntent { status } errors { code } } }","variables":{"id":"%s"}}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  created = {}
  payments = 0
  failures = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer sk_test_dev"
end

function request()
  local id = table.remove(created)
  if id then
    return wrk.format(nil, nil, nil, string.format(confirm, id))
  end
  return wrk.format(nil, nil, nil, create)
end

function response(status, headers, body)
  if string.find(body, '"createPaymentIntent"', 1, true) then
    local id = string.match(body, '"id":"(pi_%w+)"')
    if id then table.insert(created, id) else failures = failures + 1 end
  elseif string.find(body, '"SUCCEEDED"', 1, true) then
    payments = payments + 1
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local paid, failed = 0, 0
  for _, thread in ipairs(threads) do
    paid = paid + thread:get("payments")
    failed = failed + thread:get("failures")
  end
  local points = {}
  for _, p in ipairs({50, 75, 90, 95, 99, 99.5, 99.9, 99.99}) do
    table.insert(points, string.format('"%g": %.3f', p, latency:percentile(p) / 1000))
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_s": %.3f, "payments": %d, "failures": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
    .. '"latency_ms": {%s}, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, paid, failed,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, table.concat(points, ", "),
    latency.max / 1000))
end
