-- ftscale's wrk hook: send the configured request (or a mix), count responses by status in every thread,
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

-- A request mix (ftscale app): FTSCALE_MIX names a Lua file returning its requests, each
-- {method, path, headers, body, weight}. Every thread cycles through them by smooth weighted
-- round robin: each request gets its exact share, in the same order in every thread.
local mix = nil
local mix_file = os.getenv("FTSCALE_MIX")
if mix_file and mix_file ~= "" then
  mix = dofile(mix_file)
end
local formatted, credit, total = {}, {}, 0

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  chunks = 0
  if mix then
    for i, r in ipairs(mix) do
      formatted[i] = wrk.format(r.method, r.path, r.headers, r.body)
      credit[i] = 0
      total = total + r.weight
    end
  end
end

if mix then
  function request()
    local best = 1
    for i, r in ipairs(mix) do
      credit[i] = credit[i] + r.weight
      if credit[i] > credit[best] then
        best = i
      end
    end
    credit[best] = credit[best] - total
    return formatted[best]
  end
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
