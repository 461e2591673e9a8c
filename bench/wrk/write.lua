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

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function done(summary, latency, requests)
  local paid, failed = 0, 0
  for _, thread in ipairs(threads) do
    paid = paid + thread:get("payments")
    failed = failed + thread:get("failures")
  end
  io.write(report.line(summary, latency,
    string.format('"payments": %d, "failures": %d, ', paid, failed)))
end
