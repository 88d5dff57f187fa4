-- ftscale's wrk hook: send the configured request, count responses by status in every thread,
-- and print one machine-readable summary line ("FTSCALE_JSON {...}") when the run is done,
-- with wrk's whole latency table (microseconds and counts) so histograms merge exactly.
-- With FTSCALE_STREAM=1 the responses are server-sent event streams: it counts their events
-- (blocks ending in a blank line) in every 2xx body. wrk hands the hook whole bodies only, so
-- the time to the first event and the gaps between events cannot be measured here.
wrk.method = os.getenv("FTSCALE_METHOD") or "POST"
wrk.body = os.getenv("FTSCALE_BODY") or ""
local stream = os.getenv("FTSCALE_STREAM") == "1"
if wrk.body ~= "" then
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  chunks = 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if stream and status >= 200 and status < 300 and body then
    local _, events = string.gsub(body, "\n\n", "")
    chunks = chunks + events
  end
end

local function object(entries)
  local parts = {}
  for k, v in pairs(entries) do
    table.insert(parts, string.format('"%s": %s', tostring(k), tostring(v)))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local total = {}
  local chunks_total = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
    chunks_total = chunks_total + (thread:get("chunks") or 0)
  end
  local pct = {}
  pct["p50"] = latency:percentile(50)
  pct["p90"] = latency:percentile(90)
  pct["p99"] = latency:percentile(99)
  pct["p99.9"] = latency:percentile(99.9)
  -- latency(i) is the i-th distinct latency (us) with its count, in increasing order
  local pairs_out = {}
  for i = 1, #latency do
    local value, count = latency(i)
    table.insert(pairs_out, string.format("[%d, %d]", value, count))
  end
  io.write("FTSCALE_JSON " .. object({
    duration_us = summary.duration,
    requests = summary.requests,
    statuses = object(total),
    latency_us = object(pct),
    socket_errors = object(summary.errors),
    latency_counts = "[" .. table.concat(pairs_out, ", ") .. "]",
    chunks = chunks_total,
  }) .. "\n")
end
