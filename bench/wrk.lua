-- wrk script: replays a pool of presigned Shopify webhooks (bench/orders.py), one line per
-- request, read as it goes (nothing to load at start, so wrk's CPU per request is its own).
-- Each thread takes its own share of the lines; no order is sent twice until the pool runs
-- out, and the repeats are counted. Closed loop, or with a rate an open loop: request k is
-- due at start + k / rate whatever the earlier answers did, TOTAL requests in all, and the
-- run stops once every one is answered.
--   wrk ... -s bench/wrk.lua URL -- POOL_FILE THREADS RATE TOTAL   (RATE 0: closed loop)
-- Prints one line "BENCH_JSON {...}" with counts by status, repeats and late sends.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local timespec = ffi.new("bench_timespec")
local function now() -- stock wrk Lua has no sub-second clock; LuaJIT's ffi reaches libc's
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local pool, nthreads, line_number, wrapped
local interval, quota, start, slot, answered = nil, nil, nil, 0, 0
-- globals: done() reads them with thread:get
sent, late, repeats = 0, 0, 0
statuses = {}

function init(args)
  pool = assert(io.open(args[1], "r"))
  nthreads, line_number, wrapped = tonumber(args[2]), 0, false
  local rate, total = tonumber(args[3]), tonumber(args[4])
  if id == 0 then
    sent = -1 -- wrk calls request() once on thread 0 to check it; that one is never sent
  end
  if rate > 0 then
    interval = nthreads / rate
    quota = math.floor((total - id - 1) / nthreads) + 1
    delay = open_loop_delay -- wrk asks delay() before each request only when it exists
  end
end

local function next_line()
  while true do
    local line = pool:read("*l")
    if not line then
      pool:seek("set", 0)
      line_number, wrapped = 0, true
      line = assert(pool:read("*l"), "empty request pool")
    end
    line_number = line_number + 1
    if (line_number - 1) % nthreads == id then
      return line
    end
  end
end

function open_loop_delay()
  if slot >= quota then
    return 3600000 -- this thread's share is sent: its connections wait for the stop
  end
  local t = now()
  start = start or t
  local due = start + slot * interval
  slot = slot + 1
  if t - due > 0.05 then -- every connection was busy past this request's due time
    late = late + 1
  end
  return math.max(0, math.floor((due - t) * 1000))
end

function request()
  local webhook_id, signature, body = next_line():match("^([^\t]*)\t([^\t]*)\t(.*)$")
  sent = sent + 1
  if wrapped then
    repeats = repeats + 1
  end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = signature,
    ["X-Shopify-Webhook-Id"] = webhook_id,
    ["X-Shopify-Shop-Domain"] = "bench.myshopify.com",
  }, body)
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if answered == quota then -- wrk runs out its -d time unless bench/wrk.py stops it
    io.write("BENCH_ANSWERED\n")
    io.flush()
  end
end

function done(summary, latency)
  local counts, total_sent, total_late, total_repeats = {}, 0, 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_late = total_late + thread:get("late")
    total_repeats = total_repeats + thread:get("repeats")
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"responses": %d, "duration_us": %d, "sent": %d, "late": %d, '
      .. '"repeats": %d, "statuses": {%s}, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d}, "latency_us": {"p50": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, total_sent, total_late, total_repeats,
    table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end
