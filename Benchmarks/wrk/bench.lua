-- wrk script for Benchmarks/bench.py. Environment:
--   TARGET   request path (default /)
--   PAYMENTS file with one PAYMENT-SIGNATURE per line: every request presents a different one
--            (each wrk thread takes its own slice; THREADS says how many threads)
--   HEADER_NAME / HEADER_VALUE   one fixed extra header (e.g. a replayed payment)
--   DISTINCT  set: every request's URL is another one (TARGET?n=THREAD-SEQ), so no answer kept
--             by nginx's decision cache is ever used again
-- At the end it prints one JSON line: requests, seconds, rps, p50/p99 (µs), non-2xx, errors.
local payments = {}
local target = os.getenv("TARGET") or "/"
local fixed_name, fixed_value = os.getenv("HEADER_NAME"), os.getenv("HEADER_VALUE")
-- PAYMENTS_HEADER: the header the PAYMENTS lines go in (default PAYMENT-SIGNATURE; SIGN-IN-WITH-X
-- for sign-in proofs).
local payments_header = os.getenv("PAYMENTS_HEADER") or "PAYMENT-SIGNATURE"
if os.getenv("PAYMENTS") then
  for line in io.lines(os.getenv("PAYMENTS")) do payments[#payments + 1] = line end
end

local distinct = os.getenv("DISTINCT") ~= nil
local sequence = 0
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local count = tonumber(os.getenv("THREADS") or "1")
  local per = math.floor(#payments / count)
  first = (id - 1) * per + 1
  last = id * per
  next_index = first
end

function request()
  local headers = {["Host"] = "bench.local"}
  if fixed_name then headers[fixed_name] = fixed_value end
  if #payments > 0 then
    if next_index > last then wrk.thread:stop() end
    headers[payments_header] = payments[next_index]
    next_index = next_index + 1
  end
  if distinct then
    sequence = sequence + 1
    return wrk.format("GET", target .. "?n=" .. id .. "-" .. sequence, headers)
  end
  return wrk.format("GET", target, headers)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_us":%d,"p99_us":%d,"non2xx":%d,"errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
