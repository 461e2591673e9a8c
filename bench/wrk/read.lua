-- paymentIntent(id) with its amount, status and nextAction, by secret key.
-- The intent id comes from the environment (BENCH_INTENT).

local id = os.getenv("BENCH_INTENT")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk_test_dev"
wrk.body = '{"query":"query($id: ID!) { paymentIntent(id: $id) { amount { amount currency } '
  .. 'status nextAction { __typename } } }","variables":{"id":"' .. id .. '"}}'

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function done(summary, latency, requests)
  io.write(report.line(summary, latency))
end
