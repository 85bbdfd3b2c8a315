-- A TOTVS CRM webhook of about 1 KB with a fresh eventId on every request, so that the
-- dedupe rows measure a claim and a commit per request (not the cheaper duplicate path).
local counter = 0
local thread_id = 0
local pad = string.rep("x", 430)
local headers = {["Content-Type"] = "application/json", ["X-Api-Key"] = "bench-key"}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + (tid or 0))
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

request = function()
  counter = counter + 1
  local id = string.format("%s-%04x-4%03x-8%03x-%012x", prefix, (tid or 0) % 65536, counter % 4096, math.floor(counter / 4096) % 4096, counter)
  local body = '{"eventId":"' .. id .. '","timestamp":"2025-03-11T09:15:42.117-03:00",' ..
    '"workflow":{"id":"a3e9d1c4-2f6b-4c8e-b1d7-5e0f9a2c6b13","description":"Enviar oportunidade ganha ao ERP"},' ..
    '"trigger":{"id":"0b7d5e2a-9c41-4f3e-8a6d-1e2f3a4b5c6d","description":"Opportunity won"},' ..
    '"source":{"object":{"id":"d2c4e6f8-1a3b-4c5d-9e7f-0a1b2c3d4e5f","description":"Opportunity","contextUrl":"/api/v11/opportunity/opportunities"},' ..
    '"row":{"id":"' .. id .. '"}},"notes":"' .. pad .. '"}'
  return wrk.format("POST", nil, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
