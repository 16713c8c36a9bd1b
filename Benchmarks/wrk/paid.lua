-- wrk script: every request presents a different, valid PAYMENT-SIGNATURE read from PAYMENTS
-- (one per line, from `x402-micro --emit-payments N FILE`). Each wrk thread takes its own slice,
-- so no payment is presented twice; when a thread runs out it stops sending.
local payments = {}
for line in io.lines(os.getenv("PAYMENTS")) do payments[#payments + 1] = line end

local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(os.getenv("THREADS") or "1")
  local per = math.floor(#payments / count)
  first = (id - 1) * per + 1
  last = id * per
  next_index = first
end

function request()
  if next_index > last then
    wrk.thread:stop()
  end
  local header = payments[next_index]
  next_index = next_index + 1
  -- wrk.format uses these headers instead of wrk.headers, so name them all here.
  return wrk.format("GET", "/authorize", {
    ["Host"] = "api.example.com",
    ["X-X402-Route"] = os.getenv("ROUTE") or "weather",
    ["X-Original-URI"] = "/weather",
    ["PAYMENT-SIGNATURE"] = header,
  })
end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format("non-2xx answers: %d\n", statuses))
end
